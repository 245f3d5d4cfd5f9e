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


def reraise_swallowed_cancellation() -> None:
    """Raise CancelledError if this task was cancelled and a callee swallowed it.

    On Python 3.11, `asyncio.wait_for` loses a cancellation that arrives as the awaited future
    completes (CPython gh-86296, fixed in 3.12). aiomqtt waits for every QoS 1 acknowledgement
    and subscription with it, so a publishing loop could carry on after its cancellation and
    keep a shutdown waiting for ever (seen: the daemon's state publisher). A swallowed
    cancellation leaves the task's `cancelling()` count raised; one handled on purpose is
    `uncancel()`ed back to zero.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
