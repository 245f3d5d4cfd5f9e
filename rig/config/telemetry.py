"""The [telemetry] section: what the daemon publishes, how often."""

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
        "telemetry.fluid_hz",
        "Hz",
        50.0,
        "engineering choice: pressure/flow telemetry rate for plots and the console",
        1,
        200,
    ),
)


class TelemetryConfig(Section):
    _section: ClassVar[str] = "telemetry"

    fluid_hz: float = field_default("telemetry.fluid_hz")
