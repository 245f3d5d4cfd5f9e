"""The one source of time for drivers, the rig and the simulator.

Everything that measures or waits asks a clock, so a physics scenario can run faster than real
time and tests can step time by hand. The real clock is CLOCK_MONOTONIC, which the simulator's
device emulators share with the host when they run on the same machine: that is what lets the
stop-latency benchmark compare a board timestamp with a host timestamp directly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a monotonic time line."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to: for pure models and scripted scenarios.

    `sleep` is not supported: code driven by a manual clock is stepped, not awaited.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = start_s

    def monotonic(self) -> float:
        return self._now_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"advance({seconds}): time cannot run backwards")
        self._now_s += seconds

    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("ManualClock cannot sleep; step it with advance()")


REAL_CLOCK = RealClock()
