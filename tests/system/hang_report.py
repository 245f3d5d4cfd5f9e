"""What every task awaits when a system test is about to time out.

pytest-timeout prints the threads' stacks, and on an asyncio test they all say only "in
select()": the coroutine that waits forever is invisible. Shortly before the timeout this prints
each task of the test's event loop with the line it waits on, from the loop itself.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import AsyncIterator

import pytest

MARGIN_S = 5.0


def _print_tasks() -> None:
    out = io.StringIO()
    tasks = asyncio.all_tasks()
    print(f"\n+++ {len(tasks)} asyncio tasks before the timeout +++", file=out)
    for task in tasks:
        task.print_stack(limit=8, file=out)
    sys.stderr.write(out.getvalue())


@pytest.fixture(autouse=True)
async def _tasks_reported_before_a_timeout(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    marker = request.node.get_closest_marker("timeout")
    timeout_s = float(marker.args[0]) if marker and marker.args else 120.0
    loop = asyncio.get_running_loop()
    timer = threading.Timer(
        max(timeout_s - MARGIN_S, 1.0), loop.call_soon_threadsafe, args=(_print_tasks,)
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
