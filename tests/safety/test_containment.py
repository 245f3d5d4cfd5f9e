"""The containment supervisor: an exception in a task is reported, never ends it for good."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from drivers.clock import REAL_CLOCK
from drivers.transport.backoff import Backoff
from rig.safety.containment import TaskReturnedError, contain


async def test_an_exception_is_reported_and_the_task_restarts() -> None:
    faults: list[tuple[str, BaseException]] = []
    runs = 0
    third_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third_run.set()
            await asyncio.Event().wait()
        raise ValueError(f"run {runs}")

    task = asyncio.create_task(
        contain(
            "flaky", flaky, lambda s, e: faults.append((s, e)), REAL_CLOCK, Backoff(0.001, 0.01)
        )
    )
    async with asyncio.timeout(2.0):
        await third_run.wait()
    assert [(s, str(e)) for s, e in faults] == [("flaky", "run 1"), ("flaky", "run 2")]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_task_that_returns_is_a_fault() -> None:
    faults: list[BaseException] = []
    reported = asyncio.Event()

    async def returns() -> None:
        return None

    def report(subsystem: str, exc: BaseException) -> None:
        faults.append(exc)
        reported.set()

    task = asyncio.create_task(contain("once", returns, report, REAL_CLOCK, Backoff(0.001, 0.01)))
    async with asyncio.timeout(2.0):
        await reported.wait()
    assert isinstance(faults[0], TaskReturnedError)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_cancellation_passes_through_unreported() -> None:
    faults: list[BaseException] = []
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(contain("waits", waits, lambda s, e: faults.append(e), REAL_CLOCK))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert faults == []


async def test_a_failing_fault_report_does_not_end_the_supervisor() -> None:
    runs = 0
    second_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            second_run.set()
            await asyncio.Event().wait()
        raise ValueError("bug")

    def broken_report(subsystem: str, exc: BaseException) -> None:
        raise RuntimeError("the report failed too")

    task = asyncio.create_task(
        contain("flaky", flaky, broken_report, REAL_CLOCK, Backoff(0.001, 0.01))
    )
    async with asyncio.timeout(2.0):
        await second_run.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
