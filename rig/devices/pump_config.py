"""The [devices.pump] section: the NE-1000 syringe pump, its port and link settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rig.config.bounds import (
    Bound,
    field_default,
    format_number,
    register_bounds,
)
from rig.config.errors import Problem
from rig.devices.section import SerialDeviceSection

if TYPE_CHECKING:
    from rig.config.profile import RigProfile

register_bounds(
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
)


class PumpDeviceConfig(SerialDeviceSection):
    """The NE-1000 family syringe pump."""

    _section: ClassVar[str] = "devices.pump"

    baudrate: int = field_default("devices.pump.baudrate")
    address: int = field_default("devices.pump.address")
    safe_mode_timeout_s: int = field_default("devices.pump.safe_mode_timeout_s")
    reply_timeout_ms: int = field_default("devices.pump.reply_timeout_ms")

    def agrees_with(self, profile: RigProfile) -> list[Problem]:
        poll_period_s = 1.0 / profile.fluid.pump_poll_hz
        safe_mode_s = self.safe_mode_timeout_s
        if poll_period_s < safe_mode_s / 2:
            return []
        return [
            Problem(
                "fluid.pump_poll_hz",
                profile.fluid.pump_poll_hz,
                f"too slow to feed the pump's safe mode: 1 / pump_poll_hz = "
                f"{format_number(round(poll_period_s, 3))} s must be below "
                f"devices.pump.safe_mode_timeout_s / 2 = {format_number(safe_mode_s / 2)} s "
                f"(poll faster than {format_number(2 / safe_mode_s)} Hz)",
            )
        ]

    def hybrid_warning(self, name: str, real: frozenset[str]) -> str | None:
        if name in real and "board" not in real:
            return (
                "the real pump's power does not go through the simulated board's relay, and the "
                "board's pressure is the simulated duct's: the pump's own safe-mode timeout is its "
                "only device-side stop"
            )
        return None
