"""The [devices.board] section: the I/O board, its port, heartbeat, watchdog and resistance stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import (
    model_validator,
)

from rig.config.bounds import (
    REVIEW,
    Bound,
    field_default,
    format_number,
    register_bounds,
)
from rig.config.errors import Problem, cross_check
from rig.devices.section import SerialDeviceSection

if TYPE_CHECKING:
    from rig.config.profile import RigProfile

register_bounds(
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
    Bound(
        "devices.board.resistance_stop_mmhg_min_per_ml",
        "mmHg·min/mL",
        60.0,
        "the board's own resistance stop (docs/firmware.md): 1.5 x the host's "
        "limits.max_resistance_mmhg_min_per_ml, so the host stops first; a healthy duct "
        "(7.5-19 mmHg at 1 mL/min, clinical.md) and the envelope's tightest (37 with the "
        f"tubing) stay below it through every flow change; {REVIEW}",
        1,
        400,
    ),
    Bound(
        "devices.board.resistance_stop_samples",
        "samples",
        2,
        "consecutive 2 ms samples at or over the board's limit before it opens the relay: "
        "one noisy sample is not a wall; 2 keeps trigger-to-relay at 2 ms (docs/firmware.md)",
        1,
        50,
    ),
)


class BoardDeviceConfig(SerialDeviceSection):
    """The rig I/O board (pressure, light, pump relay, e-stop)."""

    _section: ClassVar[str] = "devices.board"

    baudrate: int = field_default("devices.board.baudrate")
    heartbeat_period_ms: int = field_default("devices.board.heartbeat_period_ms")
    watchdog_timeout_ms: int = field_default("devices.board.watchdog_timeout_ms")
    command_timeout_ms: int = field_default("devices.board.command_timeout_ms")
    resistance_stop_mmhg_min_per_ml: float = field_default(
        "devices.board.resistance_stop_mmhg_min_per_ml"
    )
    resistance_stop_samples: int = field_default("devices.board.resistance_stop_samples")

    def agrees_with(self, profile: RigProfile) -> list[Problem]:
        host_limit = profile.limits.max_resistance_mmhg_min_per_ml
        if self.resistance_stop_mmhg_min_per_ml > host_limit:
            return []
        return [
            Problem(
                "devices.board.resistance_stop_mmhg_min_per_ml",
                self.resistance_stop_mmhg_min_per_ml,
                "must be above limits.max_resistance_mmhg_min_per_ml "
                f"({format_number(host_limit)}): the board's stop backs up the host's, it "
                "must not pre-empt it",
            )
        ]

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
        cross_check(problems)
        return self
