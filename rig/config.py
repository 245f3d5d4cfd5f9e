"""The rig profile: one TOML file per rig, validated into frozen pydantic models.

Units live in the field names (`max_pressure_mmhg`, `heartbeat_period_ms`). Every bounded
number has one entry in `FIELD_BOUNDS`: its unit, default, hard bound and the source of those
figures. The models take their defaults from that registry, the validators enforce its bounds,
and `docs/configuration.md` carries the table `bounds_table_markdown()` renders from it (a test
keeps the two equal), so a figure is written down exactly once.

Reading a profile:

    profile = load_profile(Path("config/bench.toml"))      # raises ProfileError

`ProfileError.problems` lists `Problem(path, value, expected)` tuples; `str(error)` prints one
line per problem in the style `limits.max_pressure_mmhg = 400: above the hard bound 150 mmHg
(...)`. Unknown keys are errors everywhere (a misspelt limit must never fall back to its
default silently).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_PROFILE",
    "FIELD_BOUNDS",
    "MISSING",
    "BoardDeviceConfig",
    "Bound",
    "BrokerConfig",
    "DevicesConfig",
    "FluidLoopConfig",
    "LimitsConfig",
    "PathPort",
    "PortSpec",
    "Problem",
    "ProfileError",
    "PumpDeviceConfig",
    "RigProfile",
    "SimPort",
    "SimulatorConfig",
    "SyringeConfig",
    "TelemetryConfig",
    "UsbMatch",
    "UsbPort",
    "bounds_table_markdown",
    "dump_profile_toml",
    "format_value",
    "load_profile",
    "parse_profile",
    "validate_profile",
]

CONFIG_DIR: Final = Path(__file__).resolve().parents[1] / "config"
"""The repository's `config/` folder (the package is installed editable)."""

DEFAULT_PROFILE: Final = CONFIG_DIR / "sim.toml"
"""The simulator profile: what the daemon and CLI use when no profile is named."""


# --------------------------------------------------------------------------------------------
# The registry: one entry per bounded number.
# --------------------------------------------------------------------------------------------


def format_number(x: float) -> str:
    """`150.0` -> "150", `0.33` -> "0.33", `460800` -> "460800"."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


@dataclass(frozen=True)
class Bound:
    """Default, hard bound and source of one numeric profile field.

    `minimum`/`maximum` are inclusive; `above` is an exclusive lower bound (value > above);
    `choices` lists the only accepted values. A value outside is an error, never a clamp.
    """

    path: str
    unit: str
    default: float
    source: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[int, ...] | None = None

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    def _with_unit(self, x: float) -> str:
        return f"{format_number(x)} {self.unit}" if self.unit else format_number(x)

    def describe(self) -> str:
        """The hard bound in words, as the docs table shows it: "> 0 and ≤ 150 mmHg"."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        parts: list[str] = []
        if self.above is not None:
            parts.append(f"> {format_number(self.above)}")
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{format_number(self.minimum)} .. {format_number(self.maximum)}")
        elif self.minimum is not None:
            parts.append(f"≥ {format_number(self.minimum)}")
        elif self.maximum is not None:
            parts.append(f"≤ {format_number(self.maximum)}")
        text = " and ".join(parts) if parts else "none"
        return f"{text} {self.unit}" if self.unit and parts else text

    def violation(self, value: float) -> str | None:
        """What is wrong with `value`, in the message style; None if it is within bounds."""
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            return f"not one of the accepted values {allowed} ({self.source})"
        if self.maximum is not None and value > self.maximum:
            return f"above the hard bound {self._with_unit(self.maximum)} ({self.source})"
        if self.minimum is not None and value < self.minimum:
            return f"below the hard bound {self._with_unit(self.minimum)} ({self.source})"
        if self.above is not None and value <= self.above:
            return f"must be above {self._with_unit(self.above)} ({self.source})"
        return None


_SALIVARY = (
    "clinical.md, salivary endoscopy analogue: normal filling 7.5-19 mmHg, "
    "ducts dilate above ~30 mmHg, flushing peaks ~150 mmHg"
)
_REVIEW = "engineering choice, needs clinical review"
_BENCH = "engineering estimate, to be measured on the bench"

_BOUNDS: Final[tuple[Bound, ...]] = (
    # broker
    Bound("broker.port", "", 1883, "TCP port range; 1883 is the IANA MQTT port", 1, 65535),
    # devices.pump
    Bound(
        "devices.pump.baudrate",
        "baud",
        19200,
        "NE-1000 manual: RS-232 at 300-19200 baud, 19200 in the quick start",
        choices=(300, 1200, 2400, 9600, 19200),
    ),
    Bound("devices.pump.address", "", 0, "NE-1000 manual: pump addresses 0-99", 0, 99),
    Bound(
        "devices.pump.safe_mode_timeout_s",
        "s",
        2,
        "product rule: NE-1000 safe mode (SAF<n>) is mandatory, the pump stops on its own "
        "after this much host silence; value is an engineering choice",
        1,
        10,
    ),
    Bound(
        "devices.pump.reply_timeout_ms",
        "ms",
        200,
        "engineering choice: a reply takes a few ms on a 19200-baud line",
        20,
        2000,
    ),
    # devices.board
    Bound(
        "devices.board.baudrate",
        "baud",
        460800,
        "USB CDC ignores the rate; it matters only behind a UART bridge",
        1200,
        12_000_000,
    ),
    Bound(
        "devices.board.heartbeat_period_ms",
        "ms",
        50,
        "engineering choice: host heartbeat feeding the board's watchdog (rig.md)",
        10,
        500,
    ),
    Bound(
        "devices.board.watchdog_timeout_ms",
        "ms",
        250,
        "engineering choice: the board opens the pump relay after this much host silence; "
        "must exceed 2 x heartbeat_period_ms",
        20,
        2000,
    ),
    Bound(
        "devices.board.command_timeout_ms",
        "ms",
        500,
        "engineering choice: how long a board command waits for its acknowledgement, "
        "retransmissions (adaptive, 25 ms .. 5 s: protocols.md) included",
        10,
        5000,
    ),
    # syringe
    Bound(
        "syringe.inner_diameter_mm",
        "mm",
        14.43,
        "NE-1000 manual syringe table: B-D 10 cc plastic = 14.43 mm",
        0.1,
        50,
    ),
    Bound("syringe.volume_ml", "mL", 10.0, "B-D 10 mL syringe; NE-1000 holds up to 60 mL", 0.1, 60),
    # limits
    Bound(
        "limits.max_pressure_mmhg",
        "mmHg",
        40.0,
        f"{_SALIVARY}; hysteroscopy pumps set 15-150 mmHg",
        maximum=150,
        above=0,
    ),
    Bound(
        "limits.irrigation_pressure_cap_mmhg",
        "mmHg",
        30.0,
        "clinical.md: at most 400 daPa (≈ 30 mmHg) recommended for salivary endoscopy",
        maximum=150,
        above=0,
    ),
    Bound(
        "limits.backoff_start_mmhg",
        "mmHg",
        22.0,
        "engineering choice: flow is reduced linearly from here to the irrigation cap",
        minimum=0,
        maximum=150,
    ),
    Bound(
        "limits.board_cutoff_mmhg",
        "mmHg",
        80.0,
        "clinical.md: arthroscopy pumps stop at 300 mmHg (also the transducer's top, rig.md); "
        "the board's independent cut-off sits well under",
        maximum=300,
        above=0,
    ),
    Bound(
        "limits.max_flow_ml_min",
        "mL/min",
        3.0,
        f"{_REVIEW}: irrigation runs at about 1 mL/min",
        maximum=10.0,
        above=0,
    ),
    Bound(
        "limits.max_resistance_mmhg_min_per_ml",
        "mmHg·min/mL",
        40.0,
        "R = pressure / flow: normal filling 7.5-19 mmHg (clinical.md) at about 1 mL/min "
        f"gives 7.5-19; stop at about twice the top of normal ({_REVIEW})",
        maximum=200,
        above=0,
    ),
    Bound(
        "limits.max_resistance_rise_mmhg_min_per_ml_per_s",
        "mmHg·min/mL/s",
        25.0,
        "clinical.md occlusion: a trend alarm beat a fixed threshold (0.4 min vs up to 2 h); "
        f"value is an {_REVIEW}",
        maximum=500,
        above=0,
    ),
    Bound(
        "limits.leak_resistance_fraction",
        "",
        0.5,
        "clinical.md: hysteroscopy pumps alarm on a high deficit rate (perforation sign); "
        f"resistance falling while flow continues = leak; fraction is an {_REVIEW}",
        0.05,
        0.95,
    ),
    Bound(
        "limits.saline_volume_cap_ml",
        "mL",
        10.0,
        f"one syringe (syringe.volume_ml): the rig has no refill; {_REVIEW}; no clinical source",
        maximum=100,
        above=0,
    ),
    Bound(
        "limits.contrast_volume_cap_ml",
        "mL",
        3.0,
        "clinical.md, rig.md: ductography uses about 0.2-3 mL of contrast",
        maximum=5.0,
        above=0,
    ),
    Bound(
        "limits.bolus_max_rate_ml_min",
        "mL/min",
        0.5,
        f"clinical.md, rig.md: contrast is injected slowly; rate is an {_REVIEW}",
        maximum=2.0,
        above=0,
    ),
    Bound(
        "limits.post_release_bolus_max_ul",
        "uL",
        500.0,
        "clinical.md: ECRI criterion, post-release bolus at most 0.5 mL",
        maximum=500,
        above=0,
    ),
    Bound(
        "limits.relief_withdraw_ul",
        "uL",
        20.0,
        "clinical.md: arthroscopy pumps reverse to relieve pressure. The most one relief "
        "withdraw takes back after a pressure or resistance stop (0 = off): what the line holds "
        "at the 40 mmHg limit is 13 uL on the simulated line; the volume is an "
        f"{_REVIEW}",
        0,
        50,
    ),
    Bound(
        "limits.relief_target_mmhg",
        "mmHg",
        5.0,
        "the relief withdraws what the line's compliance holds above this pressure, so the "
        "post-release bolus (IEC 60601-2-24's occlusion test, clinical.md) is about this times "
        "the compliance, 1.7 uL on the simulated line; at 0 the line would be pulled to "
        f"suction; {_REVIEW}",
        0,
        20,
    ),
    Bound(
        "limits.min_flow_for_resistance_ml_min",
        "mL/min",
        0.1,
        "resistance = pressure / flow is undefined at zero flow; engineering choice",
        maximum=1.0,
        above=0,
    ),
    # fluid
    Bound(
        "fluid.line_time_constant_ms",
        "ms",
        300.0,
        f"{_BENCH}: compliance x outflow resistance",
        1,
        10_000,
    ),
    Bound(
        "fluid.stop_persistence_samples",
        "samples",
        2,
        "engineering choice: consecutive samples beyond a stop threshold before stopping "
        "(one noisy sample does not stop the pump)",
        1,
        50,
    ),
    Bound(
        "fluid.pump_poll_hz",
        "Hz",
        4.0,
        "must feed the pump's safe-mode timeout: 1 / pump_poll_hz < safe_mode_timeout_s / 2",
        1,
        20,
    ),
    Bound(
        "fluid.loop_stall_timeout_ms",
        "ms",
        100.0,
        "engineering choice: the event loop turns every few ms; a stall this long means the "
        "host cannot stop the pump in time, so a watcher thread stops it (well inside the "
        "board watchdog's 250 ms default)",
        20,
        1000,
    ),
    Bound(
        "fluid.nominal_resistance_mmhg_min_per_ml",
        "mmHg·min/mL",
        17.0,
        f"{_BENCH}: tubing plus a nominal duct phantom; the plausibility line model predicts "
        "pressure with it until it has learned the duct's own (simulator: tip 15 + tubing 2)",
        maximum=100,
        above=0,
    ),
    Bound(
        "fluid.line_model_tolerance_mmhg",
        "mmHg",
        3.0,
        "engineering choice: measured pressure may differ from the line model's by this much "
        "(15 sigma of 0.2 mmHg noise; below the 5.1 mmHg a stalled pump leaves at 0.3 mL/min); "
        f"{_BENCH} on a real duct, whose resistance wanders",
        1,
        20,
    ),
    Bound(
        "fluid.line_model_tolerance_ms",
        "ms",
        300.0,
        "engineering choice: the line model's disagreement must last this long (longer than "
        "the tubing-drop transient of a flow step, 210 ms at 0 -> 3 mL/min)",
        50,
        2000,
    ),
    Bound(
        "fluid.pressure_zero_tolerance_mmhg",
        "mmHg",
        5.0,
        "engineering choice: at self-test the line open to air must read zero within this; "
        "beyond it the transducer, its zero or the line is suspect",
        0.5,
        20,
    ),
    Bound(
        "fluid.pressure_noise_mmhg",
        "mmHg",
        0.2,
        "the transducer and board's noise, one standard deviation of single samples at rest "
        f"(simulator: 0.2); {_BENCH}. The resistance-rise window is sized from it: at low flow "
        "pressure / flow is noisy, and the window grows until the rise estimate's noise is a "
        "sixth of the limit (docs/fluid-control.md)",
        0.01,
        2.0,
    ),
    Bound(
        "fluid.rate_update_min_interval_ms",
        "ms",
        100.0,
        "engineering choice: spaces rate commands on the 19200-baud pump line",
        10,
        2000,
    ),
    Bound(
        "fluid.prime_volume_ul",
        "uL",
        300.0,
        "clinical.md: the cannula is primed and air removed before entry; volume is an "
        "engineering choice",
        0,
        2000,
    ),
    Bound(
        "fluid.prime_rate_ml_min",
        "mL/min",
        1.0,
        "engineering choice; must not exceed limits.max_flow_ml_min",
        maximum=10.0,
        above=0,
    ),
    # telemetry
    Bound(
        "telemetry.fluid_hz",
        "Hz",
        50.0,
        "engineering choice: pressure/flow telemetry rate for plots and the console",
        1,
        200,
    ),
    # simulator
    Bound(
        "simulator.pressure_noise_mmhg",
        "mmHg",
        0.2,
        "simulated transducer noise (standard deviation)",
        0,
        10,
    ),
)

FIELD_BOUNDS: Final[Mapping[str, Bound]] = types.MappingProxyType({b.path: b for b in _BOUNDS})
"""Every bounded numeric field, by dotted path: the single source of defaults and bounds."""


def _default(path: str) -> Any:
    """A pydantic Field whose default, description and JSON-schema bounds come from the registry."""
    bound = FIELD_BOUNDS[path]
    unit = f" [{bound.unit}]" if bound.unit else ""
    return Field(default=bound.default, description=f"{bound.source}{unit}")


def bounds_table_markdown() -> str:
    """The registry as a Markdown table (docs/configuration.md carries exactly this text)."""
    lines = [
        "| field | unit | default | hard bound | source |",
        "|---|---|---|---|---|",
    ]
    for b in _BOUNDS:
        unit = b.unit or "-"
        source = b.source.replace("|", "\\|")
        lines.append(
            f"| `{b.path}` | {unit} | {format_number(b.default)} | {b.describe()} | {source} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Problems and the error type.
# --------------------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING: Final = _Missing()
"""The `value` of a Problem for a required field that was not given."""


def format_value(value: object, limit: int = 80) -> str:
    """A value as the profile would spell it (TOML-ish), shortened to `limit` characters."""
    text = _format_value(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_value(value: object) -> str:
    if value is MISSING:
        return "(missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {_format_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return repr(value)


class Problem(NamedTuple):
    """One thing wrong with a profile: where, what was given, what was expected."""

    path: str
    value: object
    expected: str

    def __str__(self) -> str:
        if not self.path:
            return self.expected
        return f"{self.path} = {format_value(self.value)}: {self.expected}"


class ProfileError(ValueError):
    """A profile that cannot be used. `problems` holds every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem], source: Path | None = None) -> None:
        self.problems: list[Problem] = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class CrossFieldError(ValueError):
    """Raised inside model validators; carries full-path problems through pydantic."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def _cross_check(problems: list[Problem]) -> None:
    if problems:
        raise CrossFieldError(problems)


# --------------------------------------------------------------------------------------------
# The models.
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    """Frozen, strict, no unknown keys; numeric fields checked against FIELD_BOUNDS."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    _section: ClassVar[str] = ""

    @field_validator("*", mode="after")
    @classmethod
    def _within_hard_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        bound = FIELD_BOUNDS.get(f"{cls._section}.{info.field_name}")
        if bound is not None and isinstance(value, int | float):
            message = bound.violation(value)
            if message is not None:
                raise PydanticCustomError("hard_bound", "{message}", {"message": message})
        return value


_LOOSE_PATH = Field(default=None, strict=False)  # TOML gives paths as strings


class BrokerConfig(_Model):
    """The MQTT broker the daemon and its clients use."""

    _section: ClassVar[str] = "broker"

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = _default("broker.port")
    private: bool = False
    """True: the daemon's launcher starts a private Mosquitto on a free loopback port."""
    username: str | None = Field(default=None, min_length=1)
    password_file: Path | None = _LOOSE_PATH
    tls_ca_file: Path | None = _LOOSE_PATH

    @model_validator(mode="after")
    def _consistent(self) -> BrokerConfig:
        problems: list[Problem] = []
        if self.password_file is not None and self.username is None:
            problems.append(
                Problem(
                    "broker.password_file",
                    self.password_file,
                    "a password file needs broker.username",
                )
            )
        if self.private:
            for name in ("username", "password_file", "tls_ca_file"):
                value = getattr(self, name)
                if value is not None:
                    problems.append(
                        Problem(
                            f"broker.{name}",
                            value,
                            "not used with private = true (the private broker is loopback-only "
                            "and anonymous): remove it or set private = false",
                        )
                    )
        _cross_check(problems)
        return self


class PathPort(_Model):
    """`{ path = "/dev/serial/by-id/..." }`: a fixed device path."""

    path: str = Field(min_length=1)


class UsbMatch(_Model):
    """USB identity of a serial adaptor; serial_number tells identical adaptors apart."""

    vid: int = Field(ge=0, le=0xFFFF)
    pid: int = Field(ge=0, le=0xFFFF)
    serial_number: str | None = Field(default=None, min_length=1)


class UsbPort(_Model):
    """`{ usb = { vid = 0x0403, pid = 0x6001, serial_number = "A10K1XYZ" } }`."""

    usb: UsbMatch


class SimPort(_Model):
    """`{ sim = "pump" }`: the simulator supplies the pseudo-terminal path at run time."""

    sim: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")


PORT_FORMS: Final = (
    '{ path = "/dev/ttyUSB0" }, '
    '{ usb = { vid = 0x0403, pid = 0x6001, serial_number = "A10K1XYZ" } } '
    '(serial_number optional) or { sim = "pump" }'
)

_PORT_TAGS: Final = {"path": "path form", "usb": "usb form", "sim": "sim form"}


def _port_form(value: Any) -> str | None:
    if isinstance(value, PathPort | UsbPort | SimPort):
        return _PORT_TAGS[next(iter(type(value).model_fields))]
    if not isinstance(value, Mapping):
        return None
    present = [key for key in _PORT_TAGS if key in value]
    return _PORT_TAGS[present[0]] if len(present) == 1 else None


_TAG_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    _PORT_TAGS["path"]: PathPort,
    _PORT_TAGS["usb"]: UsbPort,
    _PORT_TAGS["sim"]: SimPort,
}

PortSpec = Annotated[
    Annotated[PathPort, Tag(_PORT_TAGS["path"])]
    | Annotated[UsbPort, Tag(_PORT_TAGS["usb"])]
    | Annotated[SimPort, Tag(_PORT_TAGS["sim"])],
    Discriminator(
        _port_form,
        custom_error_type="port_spec",
        custom_error_message=f"expected exactly one of {PORT_FORMS}",
    ),
]
"""Where a device is attached: exactly one of the path, usb or sim forms."""


class PumpDeviceConfig(_Model):
    """The NE-1000 family syringe pump."""

    _section: ClassVar[str] = "devices.pump"

    port: PortSpec
    baudrate: int = _default("devices.pump.baudrate")
    address: int = _default("devices.pump.address")
    safe_mode_timeout_s: int = _default("devices.pump.safe_mode_timeout_s")
    reply_timeout_ms: int = _default("devices.pump.reply_timeout_ms")


class BoardDeviceConfig(_Model):
    """The rig I/O board (pressure, light, pump relay, e-stop)."""

    _section: ClassVar[str] = "devices.board"

    port: PortSpec
    baudrate: int = _default("devices.board.baudrate")
    heartbeat_period_ms: int = _default("devices.board.heartbeat_period_ms")
    watchdog_timeout_ms: int = _default("devices.board.watchdog_timeout_ms")
    command_timeout_ms: int = _default("devices.board.command_timeout_ms")

    @model_validator(mode="after")
    def _watchdog_outlasts_heartbeats(self) -> BoardDeviceConfig:
        problems: list[Problem] = []
        if self.watchdog_timeout_ms <= 2 * self.heartbeat_period_ms:
            problems.append(
                Problem(
                    "devices.board.watchdog_timeout_ms",
                    self.watchdog_timeout_ms,
                    "must be more than 2 x devices.board.heartbeat_period_ms "
                    f"(> {2 * self.heartbeat_period_ms} ms), so one late heartbeat does not "
                    "trip the board's watchdog",
                )
            )
        _cross_check(problems)
        return self


class DevicesConfig(_Model):
    _section: ClassVar[str] = "devices"

    pump: PumpDeviceConfig
    board: BoardDeviceConfig


class SyringeConfig(_Model):
    _section: ClassVar[str] = "syringe"

    inner_diameter_mm: float = _default("syringe.inner_diameter_mm")
    volume_ml: float = _default("syringe.volume_ml")


class LimitsConfig(_Model):
    """Supervision limits of the fluid loop; see FIELD_BOUNDS for each one's source."""

    _section: ClassVar[str] = "limits"

    max_pressure_mmhg: float = _default("limits.max_pressure_mmhg")
    irrigation_pressure_cap_mmhg: float = _default("limits.irrigation_pressure_cap_mmhg")
    backoff_start_mmhg: float = _default("limits.backoff_start_mmhg")
    board_cutoff_mmhg: float = _default("limits.board_cutoff_mmhg")
    max_flow_ml_min: float = _default("limits.max_flow_ml_min")
    max_resistance_mmhg_min_per_ml: float = _default("limits.max_resistance_mmhg_min_per_ml")
    max_resistance_rise_mmhg_min_per_ml_per_s: float = _default(
        "limits.max_resistance_rise_mmhg_min_per_ml_per_s"
    )
    leak_resistance_fraction: float = _default("limits.leak_resistance_fraction")
    saline_volume_cap_ml: float = _default("limits.saline_volume_cap_ml")
    contrast_volume_cap_ml: float = _default("limits.contrast_volume_cap_ml")
    bolus_max_rate_ml_min: float = _default("limits.bolus_max_rate_ml_min")
    post_release_bolus_max_ul: float = _default("limits.post_release_bolus_max_ul")
    relief_withdraw_ul: float = _default("limits.relief_withdraw_ul")
    relief_target_mmhg: float = _default("limits.relief_target_mmhg")
    min_flow_for_resistance_ml_min: float = _default("limits.min_flow_for_resistance_ml_min")

    @model_validator(mode="after")
    def _ordered(self) -> LimitsConfig:
        p: list[Problem] = []
        if self.irrigation_pressure_cap_mmhg >= self.max_pressure_mmhg:
            p.append(
                Problem(
                    "limits.irrigation_pressure_cap_mmhg",
                    self.irrigation_pressure_cap_mmhg,
                    "must be below limits.max_pressure_mmhg "
                    f"({format_number(self.max_pressure_mmhg)} mmHg)",
                )
            )
        if self.backoff_start_mmhg >= self.irrigation_pressure_cap_mmhg:
            p.append(
                Problem(
                    "limits.backoff_start_mmhg",
                    self.backoff_start_mmhg,
                    "must be below limits.irrigation_pressure_cap_mmhg "
                    f"({format_number(self.irrigation_pressure_cap_mmhg)} mmHg)",
                )
            )
        if self.board_cutoff_mmhg <= self.max_pressure_mmhg:
            p.append(
                Problem(
                    "limits.board_cutoff_mmhg",
                    self.board_cutoff_mmhg,
                    "must be above limits.max_pressure_mmhg "
                    f"({format_number(self.max_pressure_mmhg)} mmHg): the board's cut-off "
                    "backs up the host's stop, it must not pre-empt it",
                )
            )
        if self.bolus_max_rate_ml_min > self.max_flow_ml_min:
            p.append(
                Problem(
                    "limits.bolus_max_rate_ml_min",
                    self.bolus_max_rate_ml_min,
                    "must not exceed limits.max_flow_ml_min "
                    f"({format_number(self.max_flow_ml_min)} mL/min)",
                )
            )
        if self.bolus_max_rate_ml_min < self.min_flow_for_resistance_ml_min:
            p.append(
                Problem(
                    "limits.bolus_max_rate_ml_min",
                    self.bolus_max_rate_ml_min,
                    "must be at least limits.min_flow_for_resistance_ml_min "
                    f"({format_number(self.min_flow_for_resistance_ml_min)} mL/min): a slower "
                    "bolus cannot be supervised",
                )
            )
        if self.min_flow_for_resistance_ml_min >= self.max_flow_ml_min:
            p.append(
                Problem(
                    "limits.min_flow_for_resistance_ml_min",
                    self.min_flow_for_resistance_ml_min,
                    "must be below limits.max_flow_ml_min "
                    f"({format_number(self.max_flow_ml_min)} mL/min)",
                )
            )
        _cross_check(p)
        return self


class FluidLoopConfig(_Model):
    _section: ClassVar[str] = "fluid"

    line_time_constant_ms: float = _default("fluid.line_time_constant_ms")
    stop_persistence_samples: int = _default("fluid.stop_persistence_samples")
    pump_poll_hz: float = _default("fluid.pump_poll_hz")
    rate_update_min_interval_ms: float = _default("fluid.rate_update_min_interval_ms")
    loop_stall_timeout_ms: float = _default("fluid.loop_stall_timeout_ms")
    nominal_resistance_mmhg_min_per_ml: float = _default("fluid.nominal_resistance_mmhg_min_per_ml")
    line_model_tolerance_mmhg: float = _default("fluid.line_model_tolerance_mmhg")
    line_model_tolerance_ms: float = _default("fluid.line_model_tolerance_ms")
    pressure_zero_tolerance_mmhg: float = _default("fluid.pressure_zero_tolerance_mmhg")
    pressure_noise_mmhg: float = _default("fluid.pressure_noise_mmhg")
    prime_volume_ul: float = _default("fluid.prime_volume_ul")
    prime_rate_ml_min: float = _default("fluid.prime_rate_ml_min")


class TelemetryConfig(_Model):
    _section: ClassVar[str] = "telemetry"

    fluid_hz: float = _default("telemetry.fluid_hz")


class SimulatorConfig(_Model):
    """Present in the simulator profile only."""

    _section: ClassVar[str] = "simulator"

    seed: int = 0
    pressure_noise_mmhg: float = _default("simulator.pressure_noise_mmhg")

    @model_validator(mode="before")
    @classmethod
    def _no_time_scale(cls, data: Any) -> Any:
        """`time_scale` was a setting that did nothing; a profile that still sets it is told why
        it is gone rather than offered a spelling of another key."""
        if isinstance(data, Mapping) and "time_scale" in data:
            _cross_check(
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


class RigProfile(_Model):
    """One rig: its broker, devices, syringe, limits and loop settings."""

    rig_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    devices: DevicesConfig
    syringe: SyringeConfig = Field(default_factory=SyringeConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    fluid: FluidLoopConfig = Field(default_factory=FluidLoopConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    simulator: SimulatorConfig | None = None

    @model_validator(mode="after")
    def _sections_agree(self) -> RigProfile:
        p: list[Problem] = []
        poll_period_s = 1.0 / self.fluid.pump_poll_hz
        safe_mode_s = self.devices.pump.safe_mode_timeout_s
        if poll_period_s >= safe_mode_s / 2:
            p.append(
                Problem(
                    "fluid.pump_poll_hz",
                    self.fluid.pump_poll_hz,
                    f"too slow to feed the pump's safe mode: 1 / pump_poll_hz = "
                    f"{format_number(round(poll_period_s, 3))} s must be below "
                    f"devices.pump.safe_mode_timeout_s / 2 = {format_number(safe_mode_s / 2)} s "
                    f"(poll faster than {format_number(2 / safe_mode_s)} Hz)",
                )
            )
        if self.fluid.prime_rate_ml_min > self.limits.max_flow_ml_min:
            p.append(
                Problem(
                    "fluid.prime_rate_ml_min",
                    self.fluid.prime_rate_ml_min,
                    "must not exceed limits.max_flow_ml_min "
                    f"({format_number(self.limits.max_flow_ml_min)} mL/min)",
                )
            )
        if (
            self.fluid.nominal_resistance_mmhg_min_per_ml
            >= self.limits.max_resistance_mmhg_min_per_ml
        ):
            p.append(
                Problem(
                    "fluid.nominal_resistance_mmhg_min_per_ml",
                    self.fluid.nominal_resistance_mmhg_min_per_ml,
                    "must be below limits.max_resistance_mmhg_min_per_ml "
                    f"({format_number(self.limits.max_resistance_mmhg_min_per_ml)}): a nominal "
                    "duct is not one the resistance stop stops on",
                )
            )
        for cap in ("saline_volume_cap_ml", "contrast_volume_cap_ml"):
            cap_ml = getattr(self.limits, cap)
            if cap_ml > self.syringe.volume_ml:
                p.append(
                    Problem(
                        f"limits.{cap}",
                        cap_ml,
                        f"at most syringe.volume_ml ({format_number(self.syringe.volume_ml)} mL): "
                        "the rig has no refill, so a cap above one syringe can never act",
                    )
                )
        if self.simulator is None:
            for name in ("pump", "board"):
                port = getattr(self.devices, name).port
                if isinstance(port, SimPort):
                    p.append(
                        Problem(
                            f"devices.{name}.port",
                            {"sim": port.sim},
                            "a sim port needs a [simulator] section",
                        )
                    )
        _cross_check(p)
        return self


# --------------------------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def load_profile(path: Path) -> RigProfile:
    """Read and validate the profile at `path`.

    Raises OSError when the file cannot be read and ProfileError when it is not a valid profile
    (TOML syntax included). Relative `broker.password_file` / `broker.tls_ca_file` paths are
    taken relative to the profile's folder.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            [Problem("", MISSING, f"not UTF-8 text (byte {exc.start}): TOML files are UTF-8")],
            source=path,
        ) from None
    try:
        return parse_profile(text, base_dir=path.parent)
    except ProfileError as exc:
        exc.source = path
        raise


def parse_profile(text: str, base_dir: Path | None = None) -> RigProfile:
    """Validate a profile given as TOML text; relative file paths resolve against `base_dir`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        if match is not None:
            where = f"line {match.group(1)}, column {match.group(2)}"
            message = f"TOML syntax error at {where}: {message[: match.start()]}"
        else:
            message = f"TOML syntax error: {message}"
        raise ProfileError([Problem("", MISSING, message)]) from None
    profile = validate_profile(raw)
    if base_dir is None:
        return profile
    return _resolve_files(profile, base_dir)


def validate_profile(data: Mapping[str, object]) -> RigProfile:
    """Validate already-parsed profile data; raises ProfileError listing every problem."""
    try:
        return RigProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_problems(exc, data)) from None


def _resolve_files(profile: RigProfile, base_dir: Path) -> RigProfile:
    broker = profile.broker
    update: dict[str, Path] = {}
    for name in ("password_file", "tls_ca_file"):
        value = getattr(broker, name)
        if value is not None and not value.is_absolute():
            update[name] = base_dir / value
    if not update:
        return profile
    return profile.model_copy(update={"broker": broker.model_copy(update=update)})


def _problems(exc: ValidationError, data: Mapping[str, object]) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if part not in _PORT_TAGS.values())
        path = ".".join(str(part) for part in loc)
        kind = err["type"]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, CrossFieldError):
            problems.extend(cause.problems)
        elif kind == "missing":
            problems.append(Problem(path, MISSING, "required"))
        elif kind == "extra_forbidden":
            problems.append(Problem(path, err["input"], _unknown_key(err["loc"])))
        else:
            problems.append(Problem(path or "(profile)", err["input"], err["msg"]))
    return problems


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    known = _known_keys(loc[:-1])
    if not known:
        return "unknown key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return "unknown key (expected one of: " + ", ".join(known) + ")"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `loc` accepts (empty if it cannot be told)."""
    model: type[BaseModel] | None = RigProfile
    for part in loc:
        if part in _TAG_MODELS:
            model = _TAG_MODELS[str(part)]
            continue
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return []
        model = _model_in(field.annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------------------------
# Writing a resolved profile back out.
# --------------------------------------------------------------------------------------------

_INLINE_MODELS: Final = (PathPort, UsbPort, SimPort, UsbMatch)


def _toml_scalar(value: object) -> str:
    if isinstance(value, _INLINE_MODELS):
        parts = []
        for name in type(value).model_fields:
            item = getattr(value, name)
            if item is None:
                continue
            if name in ("vid", "pid") and isinstance(item, int):
                parts.append(f"{name} = 0x{item:04x}")
            else:
                parts.append(f"{name} = {_toml_scalar(item)}")
        return "{ " + ", ".join(parts) + " }"
    if isinstance(value, float):
        return repr(value)
    return _format_value(value)


def dump_profile_toml(profile: RigProfile) -> str:
    """The fully resolved profile (defaults filled in) as TOML that `parse_profile` reads back."""
    lines: list[str] = []

    def table(prefix: str, model: BaseModel) -> None:
        nested: list[tuple[str, BaseModel]] = []
        body: list[str] = []
        for name in type(model).model_fields:
            value = getattr(model, name)
            if value is None:
                continue
            if isinstance(value, BaseModel) and not isinstance(value, _INLINE_MODELS):
                nested.append((f"{prefix}.{name}" if prefix else name, value))
            else:
                body.append(f"{name} = {_toml_scalar(value)}")
        if prefix and (body or not nested):
            lines.extend(["", f"[{prefix}]"])
        lines.extend(body)
        for sub_prefix, sub in nested:
            table(sub_prefix, sub)

    table("", profile)
    return "\n".join(lines).lstrip("\n") + "\n"
