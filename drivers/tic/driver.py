"""Async driver for a Pololu Tic: typed operations over a USB or TTL serial transport, no policy.

The driver does what it is told: energize, exit safe start, move to a position or at a
velocity, halt, home, set limits, read the status. What a basket may do, and when, is the rig's.

- One lock serialises the exchanges of one Tic; `halt_and_hold_nowait` bypasses it (the fault
  path: it starts the request at once and never awaits).
- The command timeout is the Tic's own safety: if the host goes silent for the configured period
  the Tic raises its command-timeout error and takes its soft-error response (decelerate to hold
  by default). `heartbeat` keeps it fed with "reset command timeout" while the host is alive;
  `configure_command_timeout` arms it (over USB it writes the setting and reinitializes the Tic;
  over serial, which cannot write settings, it checks that the Tic was configured so).
- A status is read in blocks of at most the transport's read length (128 bytes over USB, 15 over
  serial), so one `status()` is one USB transfer or six serial reads.
- Errors go up: a lost link is `LinkClosedError`, a timeout is a `TimeoutError`, a refused or
  malformed exchange is `UsbTransferError` or `TicProtocolError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from drivers.clock import REAL_CLOCK, Clock
from drivers.tic.codec import (
    MAX_COMMAND_TIMEOUT_MS,
    STATUS_READ_LENGTH,
    Command,
    Field,
    HomeDirection,
    Request,
    Setting,
    StepMode,
    TicCommand,
    TicStatus,
    get_settings,
    get_variables,
    go_home,
    halt_and_set_position,
    quick,
    set_current_limit_code,
    set_max_accel,
    set_max_decel,
    set_max_speed,
    set_setting_bytes,
    set_starting_speed,
    set_step_mode,
    set_target_position,
    set_target_velocity,
    split_read,
)
from drivers.transport.linkstats import LinkStats

log = logging.getLogger(__name__)


class TicTransport(Protocol):
    max_read_length: int
    writes_settings: bool
    stats: LinkStats

    @property
    def is_open(self) -> bool: ...

    def describe(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def wait_closed(self) -> None: ...

    async def exchange(self, request: Request) -> bytes: ...

    def send_nowait(
        self, command: Command, on_failure: Callable[[BaseException], None]
    ) -> None: ...


class TicConfigurationError(Exception):
    """The Tic's settings are not what the host needs (and cannot be written on this transport)."""


class TicStepper:
    def __init__(self, transport: TicTransport, *, clock: Clock = REAL_CLOCK) -> None:
        self.transport = transport
        self.stats = transport.stats
        self._clock = clock
        self._lock = asyncio.Lock()
        self.last_status: TicStatus | None = None
        self.last_status_s: float | None = None
        self.heartbeats_sent = 0
        self.nowait_failures: list[BaseException] = []
        """Failures of fault-path requests, in order (each is also logged as an error)."""

    @property
    def is_connected(self) -> bool:
        return self.transport.is_open

    # --- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> TicStatus:
        """Open the link and read the status (what the Tic is doing after a reconnection)."""
        await self.transport.open()
        return await self.status()

    async def close(self) -> None:
        await self.transport.close()

    async def wait_closed(self) -> None:
        await self.transport.wait_closed()

    # --- commands -------------------------------------------------------------------------------

    async def energize(self) -> None:
        await self._send(quick(TicCommand.ENERGIZE))

    async def deenergize(self) -> None:
        await self._send(quick(TicCommand.DEENERGIZE))

    async def exit_safe_start(self) -> None:
        await self._send(quick(TicCommand.EXIT_SAFE_START))

    async def enter_safe_start(self) -> None:
        await self._send(quick(TicCommand.ENTER_SAFE_START))

    async def reset_command_timeout(self) -> None:
        await self._send(quick(TicCommand.RESET_COMMAND_TIMEOUT))

    async def set_target_position(self, position_usteps: int) -> None:
        await self._send(set_target_position(position_usteps))

    async def set_target_velocity(self, velocity_usteps_per_10ks: int) -> None:
        await self._send(set_target_velocity(velocity_usteps_per_10ks))

    async def halt_and_hold(self) -> None:
        await self._send(quick(TicCommand.HALT_AND_HOLD))

    async def halt_and_set_position(self, position_usteps: int) -> None:
        await self._send(halt_and_set_position(position_usteps))

    async def go_home(self, direction: HomeDirection = HomeDirection.REVERSE) -> None:
        await self._send(go_home(direction))

    async def set_max_speed(self, speed_usteps_per_10ks: int) -> None:
        await self._send(set_max_speed(speed_usteps_per_10ks))

    async def set_starting_speed(self, speed_usteps_per_10ks: int) -> None:
        await self._send(set_starting_speed(speed_usteps_per_10ks))

    async def set_max_accel(self, accel_usteps_per_100s2: int) -> None:
        await self._send(set_max_accel(accel_usteps_per_100s2))

    async def set_max_decel(self, decel_usteps_per_100s2: int) -> None:
        await self._send(set_max_decel(decel_usteps_per_100s2))

    async def set_current_limit_code(self, code: int) -> None:
        await self._send(set_current_limit_code(code))

    async def set_step_mode(self, mode: StepMode) -> None:
        await self._send(set_step_mode(mode))

    def halt_and_hold_nowait(self) -> None:
        """Start a halt-and-hold now, without awaiting and ahead of the lock (the fault path).

        A link already known to be closed raises `LinkClosedError` at once; a failure of the
        transfer itself (the Tic unplugged meanwhile) is recorded in `nowait_failures` and
        logged. Either way the Tic's own command timeout is then what stops the motor.
        """
        self.transport.send_nowait(quick(TicCommand.HALT_AND_HOLD), self._nowait_failed)

    def _nowait_failed(self, exc: BaseException) -> None:
        self.nowait_failures.append(exc)
        log.error("halt and hold to %s failed: %s", self.transport.describe(), exc)

    # --- reads ----------------------------------------------------------------------------------

    async def status(self, *, clear_errors_occurred: bool = False) -> TicStatus:
        """The Tic's variables 0x00..0x4C; optionally clearing "errors occurred" as it reads."""
        read = get_variables(0, STATUS_READ_LENGTH, clear_errors_occurred=clear_errors_occurred)
        block = b""
        async with self._lock:
            for part in split_read(read, self.transport.max_read_length):
                block += await self.transport.exchange(part)
        status = TicStatus.decode(block)
        self.last_status = status
        self.last_status_s = self._clock.monotonic()
        return status

    async def read_setting(self, field: Field) -> int:
        async with self._lock:
            block = await self.transport.exchange(get_settings(field.offset, field.size))
        return field.unpack(block, field.offset)

    # --- the command timeout --------------------------------------------------------------------

    async def configure_command_timeout(self, timeout_ms: int) -> None:
        """Arm the Tic's command timeout at `timeout_ms` (1..60000) (`configure_settings`)."""
        if not 1 <= timeout_ms <= MAX_COMMAND_TIMEOUT_MS:
            raise ValueError(
                f"command timeout = {timeout_ms} ms: expected 1..{MAX_COMMAND_TIMEOUT_MS}"
            )
        await self.configure_settings({Setting.COMMAND_TIMEOUT: timeout_ms})

    async def configure_settings(self, values: Mapping[Field, int]) -> None:
        """Make the Tic's settings hold `values` (the command timeout, the homing speeds).

        Each is read first; over USB those that differ are written and the Tic reinitialized
        once to apply them (settings take effect on reinitialize), then read back; over serial,
        which cannot write settings, a difference is refused.
        """
        found = {f: await self.read_setting(f) for f in values}
        differ = {f: v for f, v in values.items() if found[f] != v}
        if not differ:
            return
        if not self.transport.writes_settings:
            wrong = ", ".join(f"{f.name} = {found[f]} (expected {v})" for f, v in differ.items())
            raise TicConfigurationError(
                f"{self.transport.describe()}: {wrong}; set them over USB (ticcmd or the Tic "
                "Control Center)"
            )
        async with self._lock:
            for field, value in differ.items():
                for request in set_setting_bytes(field, value):
                    await self.transport.exchange(request)
            await self.transport.exchange(quick(TicCommand.REINITIALIZE))
        for field, value in differ.items():
            applied = await self.read_setting(field)
            if applied != value:
                raise TicConfigurationError(
                    f"{self.transport.describe()}: {field.name} reads {applied} after writing "
                    f"{value}"
                )

    async def heartbeat(self, period_s: float) -> None:
        """Reset the command timeout every `period_s`, until cancelled or the link fails."""
        while True:
            await self.reset_command_timeout()
            self.heartbeats_sent += 1
            await self._clock.sleep(period_s)

    async def _send(self, command: Command) -> None:
        async with self._lock:
            await self.transport.exchange(command)
