"""The loop-stall guard's beat measures how late the event loop wakes (rig bench camera's
fluid_loop_jitter figures, state.loop_lateness_ms)."""

from __future__ import annotations

import asyncio
import time

from drivers.transport.tasks import cancel_and_wait
from rig.safety.stall_guard import LoopStallGuard


async def test_a_blocked_loop_shows_in_the_lateness() -> None:
    guard = LoopStallGuard(1.0, emergency_stop=lambda: None, on_stall_reported=lambda _: None)
    assert guard.lateness_ms() is None
    task = asyncio.create_task(guard.run())
    await asyncio.sleep(0.1)
    time.sleep(0.03)  # the loop blocked for 30 ms  # noqa: ASYNC251 - on purpose
    await asyncio.sleep(0.05)
    await cancel_and_wait(task)
    figures = guard.lateness_ms()
    assert figures is not None and figures["beats"] > 5
    assert figures["max"] >= 25.0 and figures["p50"] < figures["max"]
