"""Fault containment for the daemon's device and control tasks (docs/safety/fault-containment.md).

Each long-lived task (a device supervisor, the heartbeat, the self-test loop, the stall guard,
the actuation loop) runs under `contain`. An exception that escapes the task is not allowed to
end the daemon's TaskGroup, and it is not swallowed either: it becomes a latched fault of that
subsystem (`on_fault`: the interlock trips, fluid stops, the cause and the exception are
reported), and the task starts again after a back-off, so the rig stays up to report it and an
operator can reset and carry on. A task that returns had no business returning: that is a fault
too. Cancellation (shutdown) passes through untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from drivers.clock import Clock
from drivers.transport.backoff import Backoff

log = logging.getLogger(__name__)

HEALTHY_RUN_S = 10.0
"""A task that ran this long before failing starts again at the shortest back-off."""

FaultHandler = Callable[[str, BaseException], None]


class TaskReturnedError(RuntimeError):
    """A task meant to run for the daemon's life returned."""


async def contain(
    subsystem: str,
    task: Callable[[], Awaitable[None]],
    on_fault: FaultHandler,
    clock: Clock,
    backoff: Backoff | None = None,
) -> None:
    """Run `task` for ever: every exception is reported through `on_fault`, then it restarts."""
    backoff = backoff or Backoff(initial_s=0.1, maximum_s=5.0)
    while True:
        started_s = clock.monotonic()
        try:
            await task()
            raise TaskReturnedError(f"{subsystem} returned; it should run until shutdown")
        except Exception as exc:
            log.exception("%s failed; it restarts after a back-off", subsystem)
            try:
                on_fault(subsystem, exc)
            except Exception:
                # The report itself failed: the fault handler's own stop has run first
                # (Interlock.trip writes the stop before it announces), so keep going.
                log.exception("reporting the fault of %s failed", subsystem)
        if clock.monotonic() - started_s >= HEALTHY_RUN_S:
            backoff.reset()
        await asyncio.sleep(backoff.next_delay_s())
