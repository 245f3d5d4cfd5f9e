"""The record's storage check, in one process: its verdicts, and that checks never race."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rig.events.models import EventBase
from rig.record.storage import StorageMonitor


def _monitor(directory: Path, min_free_mb: float) -> tuple[StorageMonitor, list[EventBase]]:
    recorded: list[EventBase] = []

    def record(event: EventBase) -> EventBase:
        recorded.append(event)
        return event

    return StorageMonitor(directory, min_free_mb, record, lambda: None), recorded


async def test_concurrent_checks_of_a_healthy_directory_all_pass(tmp_path: Path) -> None:
    # The periodic check and a procedure.start's own check can overlap; each writes and removes
    # the probe file, and one must not remove the other's (a false storage alarm, seen in CI).
    monitor, recorded = _monitor(tmp_path, 0.0)
    verdicts = await asyncio.gather(*(monitor.check() for _ in range(40)))
    assert verdicts == [None] * 40
    assert recorded == []


async def test_a_directory_below_the_free_space_floor_is_refused(tmp_path: Path) -> None:
    monitor, recorded = _monitor(tmp_path, 1e12)
    reason = await monitor.check()
    assert reason is not None and "below record.min_free_mb" in reason
    assert [event.kind for event in recorded] == ["storage_fault"]
