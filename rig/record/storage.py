"""The record's storage: can the record directory take a procedure's record?

A full disk or an unwritable directory is an alarm (`storage_fault`) and keeps new procedures
from starting; it never stops the safety functions or the fluid (clinical.md: the record is
documentation, the stop is safety). It clears by itself (`storage_restored`) once the directory
can take the record again. The checks touch the disk, so they run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from drivers.transport.mqtt import JsonObject
from rig.events.models import EventBase, StorageFault, StorageRestored

log = logging.getLogger(__name__)

CHECK_PERIOD_S = 2.0
PROBE_FILE = ".write-probe"


def check_storage(directory: Path, min_free_mb: float) -> tuple[str | None, float | None]:
    """(why `directory` cannot take the record, or None; its free space in MB, if known)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / PROBE_FILE
        # Written, not only stat'ed: a read-only mount and a full disk both fail here.
        with probe.open("wb") as file:
            file.write(b"\0" * 4096)
            file.flush()
            os.fsync(file.fileno())
        probe.unlink()
        free_mb = shutil.disk_usage(directory).free / 1e6
    except OSError as exc:
        return f"the record directory {directory} cannot be written: {exc}", None
    if free_mb < min_free_mb:
        return (
            f"{free_mb:.0f} MB free in {directory}, below record.min_free_mb ({min_free_mb:g} MB)",
            free_mb,
        )
    return None, free_mb


class StorageMonitor:
    """Checks the record directory every CHECK_PERIOD_S; `refusal()` is why no procedure may
    start now (also a journal that cannot be written), or None. `directory` None: the events
    are kept in memory only (a daemon built without a run directory), nothing to check."""

    def __init__(
        self,
        directory: Path | None,
        min_free_mb: float,
        record: Callable[[EventBase], EventBase],
        journal_fault: Callable[[], str | None],
    ) -> None:
        self.directory = directory
        self._min_free_mb = min_free_mb
        self._record = record
        self._journal_fault = journal_fault
        self.fault: str | None = None
        self.free_mb: float | None = None
        self._checked = directory is None
        # One probe at a time: the periodic check and a procedure.start's check can overlap,
        # and one would remove the other's probe file (a false storage alarm).
        self._checking = asyncio.Lock()

    def refusal(self) -> str | None:
        journal_fault = self._journal_fault()
        if journal_fault is not None:
            return f"the journal cannot be written ({journal_fault})"
        if not self._checked:
            return "the record's storage has not been checked yet"
        return self.fault

    async def check(self) -> str | None:
        """Check now; return `refusal()`."""
        if self.directory is not None:
            async with self._checking:
                reason, free_mb = await asyncio.to_thread(
                    check_storage, self.directory, self._min_free_mb
                )
                self._update(reason, free_mb)
        return self.refusal()

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(CHECK_PERIOD_S)

    def _update(self, reason: str | None, free_mb: float | None) -> None:
        was, self.fault, self.free_mb = self.fault, reason, free_mb
        self._checked = True
        # One alarm per episode: the reason's text changes with the free space at every check.
        if reason is not None and was is None:
            log.error("record storage: %s", reason)
            self._record(StorageFault(reason=reason, free_mb=_mb(free_mb)))
        elif reason is None and was is not None:
            log.info("record storage restored: %.0f MB free", free_mb or 0.0)
            self._record(StorageRestored(free_mb=_mb(free_mb) or 0.0))

    def as_dict(self) -> JsonObject:
        return {"ok": self.refusal() is None, "fault": self.fault, "free_mb": _mb(self.free_mb)}


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
