"""The [simulator] section: present in the simulator profile only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    model_validator,
)

from rig.config.base import Section
from rig.config.bounds import (
    Bound,
    field_default,
    register_bounds,
)
from rig.config.errors import Problem, cross_check

register_bounds(
    Bound(
        "simulator.pressure_noise_mmhg",
        "mmHg",
        0.2,
        "simulated transducer noise (standard deviation)",
        0,
        10,
    ),
)


class SimulatorConfig(Section):
    """Present in the simulator profile only."""

    _section: ClassVar[str] = "simulator"

    seed: int = 0
    pressure_noise_mmhg: float = field_default("simulator.pressure_noise_mmhg")

    @model_validator(mode="before")
    @classmethod
    def _no_time_scale(cls, data: Any) -> Any:
        """`time_scale` was a setting that did nothing; a profile that still sets it is told why
        it is gone rather than offered a spelling of another key."""
        if isinstance(data, Mapping) and "time_scale" in data:
            cross_check(
                [
                    Problem(
                        "simulator.time_scale",
                        data["time_scale"],
                        "not a setting: the simulator runs in real time, because the daemon, "
                        "the pump's safe-mode timeout and the board's watchdog all run on real "
                        "clocks (remove the key)",
                    )
                ]
            )
        return data
