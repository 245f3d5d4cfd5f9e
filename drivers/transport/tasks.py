"""Ending helper tasks without losing the caller's own cancellation."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel `tasks` and wait until each has ended; their results and errors are dropped.

    Not `task.cancel(); with suppress(CancelledError): await task`: when the caller is itself
    cancelled during that await (a shutdown arriving while a connection winds down), the
    suppress swallows the caller's cancellation too, and the caller runs on. A daemon's API loop
    did exactly that and kept reconnecting after its shutdown, which then never ended.
    `asyncio.wait` raises no child's cancellation, only the caller's own.
    """
    pending = [task for task in tasks if task is not None]
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled():
            task.exception()  # retrieved: the task ended as it was told to, whatever it raised
