"""A clock for unit tests of code that waits: time moves only when that code sleeps on it."""

from __future__ import annotations

import asyncio

from drivers.clock import ManualClock


class VirtualClock(ManualClock):
    """`sleep(s)` moves time on by exactly `s` and lets other tasks run once.

    For a unit under test that is the only sleeper (the self-test): its waits take no real time,
    and every time it reads is the sum of what it waited, so its measurements are exact.
    """

    async def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)
