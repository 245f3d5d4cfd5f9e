"""The [devices.basket] section: the basket's Tic stepper controller, its timing and limits, and
the basket's positions, speeds and grasp figures (the controller's, rig/basket/)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from drivers.tic.codec import USB_TIMEOUT_MS
from rig.config.bounds import Bound, field_default, register_bounds
from rig.config.errors import Problem, cross_check
from rig.devices.usb_section import UsbDeviceSection
from rig.safety.interlock import BasketLimits

_S = "devices.basket"
register_bounds(
    Bound(
        f"{_S}.baudrate",
        "baud",
        9600,
        "the Tic's default TTL serial rate; the Tic takes 200..115385 (user's guide, serial "
        "settings); set on the Tic itself, over USB",
        200,
        115_385,
    ),
    Bound(
        f"{_S}.command_timeout_ms",
        "ms",
        1000,
        "engineering choice (the Tic's own default): it decelerates to hold after this much "
        "host silence "
        "(protocols.md: the Tic's command timeout); at least three heartbeat periods",
        1,
        60_000,
    ),
    Bound(
        f"{_S}.heartbeat_period_ms",
        "ms",
        100,
        "engineering choice: how often 'reset command timeout' is sent",
        10,
        1000,
    ),
    Bound(
        f"{_S}.status_period_ms",
        "ms",
        20,
        "engineering choice: how often the position, encoder and errors are read (a grasp is "
        "seen within one period)",
        5,
        500,
    ),
    Bound(
        f"{_S}.usb_timeout_ms",
        "ms",
        USB_TIMEOUT_MS,
        "libpololu: 300 ms per control transfer",
        10,
        5000,
    ),
    Bound(
        f"{_S}.serial_reply_timeout_ms",
        "ms",
        100,
        "engineering choice: a Tic answers a serial block read within a millisecond or so plus "
        "the bytes' time (15 bytes: 16 ms at 9600 baud); no answer in this is a lost link",
        10,
        2000,
    ),
    Bound(
        f"{_S}.max_accel_usteps_per_100s2",
        "usteps/100s^2",
        4_000_000,
        "engineering choice: the stage reaches its speed within tens of ms (Tic units)",
        100,
        2_147_483_647,
    ),
    Bound(
        f"{_S}.max_decel_usteps_per_100s2",
        "usteps/100s^2",
        4_000_000,
        "engineering choice: as the acceleration; a halt on a grasp stops within a few usteps",
        100,
        2_147_483_647,
    ),
    Bound(
        f"{_S}.current_limit_code",
        "",
        10,
        "Tic T825: 32 mA per code; 320 mA holds a 0.4 mm basket wire's stage (engineering "
        "choice, to be measured on the bench)",
        0,
        124,
    ),
    Bound(
        f"{_S}.retracted_usteps",
        "usteps",
        0,
        "the stage's home: the basket in the channel",
        0,
        40_000,
    ),
    Bound(
        f"{_S}.open_usteps",
        "usteps",
        2000,
        "engineering choice: the basket deployed past the tip and open",
        0,
        40_000,
    ),
    Bound(
        f"{_S}.closed_usteps",
        "usteps",
        8000,
        "engineering choice: the basket closed on nothing",
        0,
        40_000,
    ),
    Bound(
        f"{_S}.open_speed_usteps_per_10ks",
        "usteps/10ks",
        20_000_000,
        "engineering choice: 2000 usteps/s opening and retracting (Tic units)",
        1,
        500_000_000,
    ),
    Bound(
        f"{_S}.close_speed_usteps_per_10ks",
        "usteps/10ks",
        10_000_000,
        "engineering choice: 1000 usteps/s closing: slower, so a grasp is seen early",
        1,
        100_000_000,
    ),
    Bound(
        f"{_S}.homing_speed_towards_usteps_per_10ks",
        "usteps/10ks",
        10_000_000,
        "engineering choice: 1000 usteps/s towards the reverse switch (basket.home); written to "
        "the Tic's settings at connect (its own default is 100 usteps/s)",
        1,
        100_000_000,
    ),
    Bound(
        f"{_S}.homing_speed_away_usteps_per_10ks",
        "usteps/10ks",
        2_000_000,
        "engineering choice: 200 usteps/s away from the switch until it releases: slow, so the "
        "home is found within a microstep or so",
        1,
        100_000_000,
    ),
    Bound(
        f"{_S}.grasp_error_usteps",
        "usteps",
        100,
        "engineering choice: the position error (position - encoder) that means the basket "
        "has closed on something: the grasp's force proxy (H17)",
        10,
        2000,
    ),
    Bound(
        f"{_S}.force_limit_usteps",
        "usteps",
        400,
        "engineering choice: the position error never to pass; past it the grasp is recorded "
        "as at the force limit (H17)",
        20,
        5000,
    ),
)


class BasketDeviceConfig(UsbDeviceSection):
    """The basket's actuator (a Pololu Tic stepper controller on USB, or on its TTL serial
    port)."""

    _section: ClassVar[str] = _S

    transport: Literal["usb", "serial"] = "usb"
    """usb: the port is the Tic's own USB ids ({ usb = ... }) or the simulator's bus
    ({ sim = "basket" }); serial: its TTL serial port, as for the other serial devices (a path,
    a USB adaptor's ids, or the simulator's pty)."""
    baudrate: int = field_default(f"{_S}.baudrate")
    device_number: int | None = Field(default=None, ge=0, le=127)
    """Serial: None for the compact protocol, else the Pololu protocol to this device number."""
    crc: bool = False
    """Serial: a CRC-7 byte on every command (the Tic's "enable CRC" setting must agree)."""

    command_timeout_ms: int = field_default(f"{_S}.command_timeout_ms")
    heartbeat_period_ms: int = field_default(f"{_S}.heartbeat_period_ms")
    status_period_ms: int = field_default(f"{_S}.status_period_ms")
    usb_timeout_ms: int = field_default(f"{_S}.usb_timeout_ms")
    serial_reply_timeout_ms: int = field_default(f"{_S}.serial_reply_timeout_ms")
    max_accel_usteps_per_100s2: int = field_default(f"{_S}.max_accel_usteps_per_100s2")
    max_decel_usteps_per_100s2: int = field_default(f"{_S}.max_decel_usteps_per_100s2")
    current_limit_code: int = field_default(f"{_S}.current_limit_code")
    retracted_usteps: int = field_default(f"{_S}.retracted_usteps")
    open_usteps: int = field_default(f"{_S}.open_usteps")
    closed_usteps: int = field_default(f"{_S}.closed_usteps")
    open_speed_usteps_per_10ks: int = field_default(f"{_S}.open_speed_usteps_per_10ks")
    close_speed_usteps_per_10ks: int = field_default(f"{_S}.close_speed_usteps_per_10ks")
    homing_speed_towards_usteps_per_10ks: int = field_default(
        f"{_S}.homing_speed_towards_usteps_per_10ks"
    )
    homing_speed_away_usteps_per_10ks: int = field_default(
        f"{_S}.homing_speed_away_usteps_per_10ks"
    )
    encoder_absolute: bool = False
    """True: the stage's encoder counts from the reverse switch, so the position is known at
    connect whatever the Tic says (the simulator's stage); False (a Tic's own encoder input,
    counting from its power-up): a Tic whose position is uncertain and that this daemon has not
    seen homed since its power-up is `unhomed` until `basket.home`."""
    grasp_error_usteps: int = field_default(f"{_S}.grasp_error_usteps")
    force_limit_usteps: int = field_default(f"{_S}.force_limit_usteps")

    def on_usb(self) -> bool:
        return self.transport == "usb"

    def sim_baudrate(self) -> int | None:
        return None if self.on_usb() else self.baudrate

    @model_validator(mode="after")
    def _checks(self) -> BasketDeviceConfig:
        problems: list[Problem] = []
        if self.command_timeout_ms < 3 * self.heartbeat_period_ms:
            problems.append(
                Problem(
                    f"{_S}.command_timeout_ms",
                    self.command_timeout_ms,
                    f"at least 3 x heartbeat_period_ms ({3 * self.heartbeat_period_ms} ms)",
                )
            )
        if not self.retracted_usteps < self.open_usteps < self.closed_usteps:
            problems.append(
                Problem(
                    f"{_S}.open_usteps",
                    self.open_usteps,
                    f"between retracted_usteps ({self.retracted_usteps}) and closed_usteps "
                    f"({self.closed_usteps}): the basket closes forward",
                )
            )
        if self.force_limit_usteps <= self.grasp_error_usteps:
            problems.append(
                Problem(
                    f"{_S}.force_limit_usteps",
                    self.force_limit_usteps,
                    f"above grasp_error_usteps ({self.grasp_error_usteps})",
                )
            )
        cross_check(problems)
        return self

    def limits(self) -> BasketLimits:
        return BasketLimits(
            command_timeout_ms=self.command_timeout_ms,
            max_accel_usteps_per_100s2=self.max_accel_usteps_per_100s2,
            max_decel_usteps_per_100s2=self.max_decel_usteps_per_100s2,
            current_limit_code=self.current_limit_code,
            homing_speed_towards_usteps_per_10ks=self.homing_speed_towards_usteps_per_10ks,
            homing_speed_away_usteps_per_10ks=self.homing_speed_away_usteps_per_10ks,
        )
