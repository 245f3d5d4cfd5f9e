"""The rig profile: one TOML file per rig, validated into frozen pydantic models.

Units live in the field names (`max_pressure_mmhg`, `heartbeat_period_ms`). Every bounded number
has one entry in the bounds registry (`rig.config.bounds`): its unit, default, hard bound and the
source of those figures. Each section is a module that registers its own bounds and defines its
model: the rig-wide ones here (`broker`, `syringe`, `limits`, `fluid`, `telemetry`, `simulator`),
each device's next to that device (`rig/devices/<name>_config.py`), the way a Klipper module owns
its config section.

Reading a profile:

    profile = load_profile(Path("config/bench.toml"))      # raises ProfileError

`ProfileError.problems` lists `Problem(path, value, expected)` tuples; `str(error)` prints one
line per problem in the style `limits.max_pressure_mmhg = 400: above the hard bound 150 mmHg
(...)`. Unknown keys are errors everywhere (a misspelt limit must never fall back to its default
silently).
"""

from rig.config.bounds import FIELD_BOUNDS, Bound, bounds_table_markdown, format_number
from rig.config.broker import BrokerConfig
from rig.config.errors import MISSING, Problem, ProfileError, format_value
from rig.config.files import (
    CONFIG_DIR,
    DEFAULT_PROFILE,
    dump_profile_toml,
    load_profile,
    parse_profile,
    validate_profile,
)
from rig.config.fluid import FluidLoopConfig
from rig.config.limits import LimitsConfig
from rig.config.ports import ConsolePort, PathPort, PortSpec, SimPort, UsbMatch, UsbPort
from rig.config.profile import RigProfile
from rig.config.simulator import SimulatorConfig
from rig.config.syringe import SyringeConfig
from rig.config.telemetry import TelemetryConfig

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_PROFILE",
    "FIELD_BOUNDS",
    "MISSING",
    "Bound",
    "BrokerConfig",
    "ConsolePort",
    "FluidLoopConfig",
    "LimitsConfig",
    "PathPort",
    "PortSpec",
    "Problem",
    "ProfileError",
    "RigProfile",
    "SimPort",
    "SimulatorConfig",
    "SyringeConfig",
    "TelemetryConfig",
    "UsbMatch",
    "UsbPort",
    "bounds_table_markdown",
    "dump_profile_toml",
    "format_number",
    "format_value",
    "load_profile",
    "parse_profile",
    "validate_profile",
]
