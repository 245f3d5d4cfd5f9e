"""The [devices.board] section: the I/O board, its port, heartbeat and watchdog."""

from __future__ import annotations

from typing import ClassVar

from pydantic import (
    model_validator,
)

from rig.config.bounds import (
    Bound,
    field_default,
    register_bounds,
)
from rig.config.errors import Problem, cross_check
from rig.devices.section import SerialDeviceSection

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
)


class BoardDeviceConfig(SerialDeviceSection):
    """The rig I/O board (pressure, light, pump relay, e-stop)."""

    _section: ClassVar[str] = "devices.board"

    baudrate: int = field_default("devices.board.baudrate")
    heartbeat_period_ms: int = field_default("devices.board.heartbeat_period_ms")
    watchdog_timeout_ms: int = field_default("devices.board.watchdog_timeout_ms")
    command_timeout_ms: int = field_default("devices.board.command_timeout_ms")

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
