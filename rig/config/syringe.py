"""The [syringe] section: the syringe the pump drives."""

from __future__ import annotations

from typing import ClassVar

from rig.config.base import Section
from rig.config.bounds import (
    Bound,
    field_default,
    register_bounds,
)

register_bounds(
    Bound(
        "syringe.inner_diameter_mm",
        "mm",
        14.43,
        "NE-1000 manual syringe table: B-D 10 cc plastic = 14.43 mm",
        0.1,
        50,
    ),
    Bound("syringe.volume_ml", "mL", 10.0, "B-D 10 mL syringe; NE-1000 holds up to 60 mL", 0.1, 60),
)


class SyringeConfig(Section):
    _section: ClassVar[str] = "syringe"

    inner_diameter_mm: float = field_default("syringe.inner_diameter_mm")
    volume_ml: float = field_default("syringe.volume_ml")
