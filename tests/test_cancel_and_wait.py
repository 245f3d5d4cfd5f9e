"""cancel_and_wait: helper tasks end, and the caller's own cancellation is never lost."""

from __future__ import annotations

import asyncio

from drivers.transport.tasks import cancel_and_wait


async def _slow_to_end() -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        await asyncio.sleep(0.05)  # a connection that takes a moment to wind down


async def test_a_cancellation_of_the_caller_while_it_waits_is_not_swallowed() -> None:
    helper = asyncio.create_task(_slow_to_end())
    await asyncio.sleep(0)
    ran_on = False

    async def caller() -> None:
        nonlocal ran_on
        await cancel_and_wait(helper)
        ran_on = True  # with suppress(CancelledError) around `await helper`, it gets here

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)  # the caller now waits for the helper's end
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and not ran_on
    await asyncio.wait([helper])
    assert helper.cancelled()


async def test_helpers_end_whatever_they_raise_and_none_is_skipped() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("failed while ending")

    failing = asyncio.create_task(fails_on_cancel())
    sleeping = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    await cancel_and_wait(failing, None, sleeping)
    assert failing.done() and sleeping.cancelled()
