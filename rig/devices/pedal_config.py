"""The [devices.pedal] section: the surgeon's USB foot pedal, its timing and what each pedal does."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, Strict, model_validator

from drivers.pedal.reports import DEFAULT_KEY_MAP, Pedal, PedalFormat
from drivers.pedal.tracker import PedalTiming
from rig.api.roles import COMMANDING_ROLES
from rig.config.bounds import Bound, field_default, register_bounds
from rig.config.errors import Problem, cross_check
from rig.config.ports import ConsolePort
from rig.devices.usb_section import UsbDeviceSection

register_bounds(
    Bound(
        "devices.pedal.press_debounce_ms",
        "ms",
        30,
        "clinical.md: no standard gives a figure; dVRK debounces its pedals at 50-200 ms. A "
        "press must last this long without a break to count (a chattering contact does not)",
        0,
        200,
    ),
    Bound(
        "devices.pedal.release_debounce_ms",
        "ms",
        0,
        "engineering choice: the pedal is a dead-man input, its release is never delayed",
        0,
        50,
    ),
    Bound(
        "devices.pedal.tap_max_ms",
        "ms",
        300,
        "engineering choice: a press released within this is also a quick tap (dVRK detects "
        "quick taps)",
        50,
        1000,
    ),
    Bound(
        "devices.pedal.stuck_after_s",
        "s",
        120.0,
        "engineering choice (H15): a press longer than an irrigation step needs is a stuck "
        "pedal (protocols.md: PCsensor switches have a known bad contact that holds a key down)",
        10,
        1800,
    ),
    Bound(
        "devices.pedal.read_timeout_ms",
        "ms",
        50,
        "engineering choice: the longest one interrupt read waits, so the tracker's deadlines "
        "are checked on time",
        5,
        500,
    ),
    Bound(
        "devices.pedal.forward_timeout_ms",
        "ms",
        300,
        "engineering choice: a pedal at a console is forwarded at least every third of this; "
        "a stream silent this long counts as released (protocols.md: a wireless pedal's "
        "receiver stops everything when its stream stops)",
        100,
        2000,
    ),
    Bound(
        "devices.pedal.irrigate_flow_ml_min",
        "mL/min",
        1.0,
        "engineering choice: the flow a held irrigate pedal asks for (the fluid limits apply)",
        above=0,
        maximum=10,
    ),
)


class PedalAction(StrEnum):
    """What pressing a pedal does."""

    IRRIGATE = "irrigate"
    """Hold to irrigate (the dead-man): a press starts irrigation at `irrigate_flow_ml_min`,
    any release (let go, stuck, unplugged) stops the fluid."""
    STOP = "stop"
    """A press stops the fluid."""
    BASKET = "basket"
    """Hold to close the basket (a dead-man too): a press asks basket.close, any release
    asks basket.halt: the basket stops where it is and holds what it has."""
    NONE = "none"


# TOML gives these names as strings: an enum is read from its value.
_PedalName = Annotated[Pedal, Strict(False)]
_Action = Annotated[PedalAction, Strict(False)]


class PedalDeviceConfig(UsbDeviceSection):
    """The surgeon's USB foot pedal (VEC IN-USB-2 or a PCsensor-style switch)."""

    _section: ClassVar[str] = "devices.pedal"
    console_attachable: ClassVar[bool] = True

    format: Annotated[PedalFormat, Strict(False)] = PedalFormat.VEC
    key_map: dict[str, _PedalName] = Field(
        default_factory=lambda: {f"{key:#04x}": pedal for key, pedal in DEFAULT_KEY_MAP.items()},
        description="PCsensor: the HID usage id (hex) each pedal's key sends",
    )
    actions: dict[_PedalName, _Action] = Field(
        default_factory=lambda: {
            Pedal.LEFT: PedalAction.IRRIGATE,
            Pedal.MIDDLE: PedalAction.NONE,
            Pedal.RIGHT: PedalAction.STOP,
        }
    )
    press_debounce_ms: int = field_default("devices.pedal.press_debounce_ms")
    release_debounce_ms: int = field_default("devices.pedal.release_debounce_ms")
    tap_max_ms: int = field_default("devices.pedal.tap_max_ms")
    stuck_after_s: float = field_default("devices.pedal.stuck_after_s")
    read_timeout_ms: int = field_default("devices.pedal.read_timeout_ms")
    forward_timeout_ms: int = field_default("devices.pedal.forward_timeout_ms")
    irrigate_flow_ml_min: float = field_default("devices.pedal.irrigate_flow_ml_min")

    @model_validator(mode="after")
    def _checks(self) -> PedalDeviceConfig:
        problems: list[Problem] = []
        stations = [role.value for role in COMMANDING_ROLES]
        if isinstance(self.port, ConsolePort) and self.port.console not in stations:
            problems.append(
                Problem(
                    "devices.pedal.port",
                    {"console": self.port.console},
                    f"the console of a role that commands: one of {', '.join(stations)}",
                )
            )
        for key in self.key_map:
            try:
                code = int(key, 16)
            except ValueError:
                code = -1
            if not 0x04 <= code <= 0xE7:
                problems.append(
                    Problem(
                        f"devices.pedal.key_map.{key}",
                        key,
                        "a HID keyboard usage id in hex, 0x04..0xe7",
                    )
                )
        if self.stuck_after_s * 1000 <= self.tap_max_ms:
            problems.append(
                Problem(
                    "devices.pedal.stuck_after_s",
                    self.stuck_after_s,
                    f"must be longer than devices.pedal.tap_max_ms ({self.tap_max_ms} ms)",
                )
            )
        cross_check(problems)
        return self

    def timing(self) -> PedalTiming:
        return PedalTiming(
            press_debounce_s=self.press_debounce_ms / 1000,
            release_debounce_s=self.release_debounce_ms / 1000,
            tap_max_s=self.tap_max_ms / 1000,
            stuck_after_s=self.stuck_after_s,
        )

    def keys(self) -> dict[int, Pedal]:
        return {int(key, 16): pedal for key, pedal in self.key_map.items()}
