"""The journal: appended events come back by cursor once committed, from memory or from the
file, survive a reopen, and a journal that cannot be written reports a fault instead of raising."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rig.events.journal import JOURNAL_FILE, Entry, Journal, read_journal
from rig.events.models import ApiLost, CommandAudit, EventBase

pytestmark = pytest.mark.timeout(20)


Faults = list[str]
"""What the journal reported through on_fault."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run" / JOURNAL_FILE


@pytest.fixture
def faults() -> Faults:
    return []


@pytest.fixture
def journals(faults: Faults) -> Iterator[list[Journal]]:
    opened: list[Journal] = []
    yield opened
    for journal in opened:
        journal.close()


def open_journal(
    path: Path | None, faults: Faults, journals: list[Journal], **kwargs: int
) -> Journal:
    journal = Journal(path, on_fault=faults.append, **kwargs)
    journals.append(journal)
    return journal


def entries(events: Sequence[EventBase]) -> list[Entry]:
    """What a reader gets for `events`: each one's seq and its JSON text."""
    return [(event.seq, event.model_dump_json().encode()) for event in events]


def lost(n: int) -> ApiLost:
    return ApiLost(reason=f"loss {n}")


async def test_appended_events_get_rising_seqs_and_are_read_back_by_cursor(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    stamped = [journal.append(lost(n), t_us=100 + n) for n in range(3)]
    assert [e.seq for e in stamped] == [1, 2, 3]
    assert [e.t_us for e in stamped] == [100, 101, 102]
    assert all(e.wall_time > 1.7e9 for e in stamped)
    assert await journal.read_after(0) == entries(stamped)
    assert await journal.read_after(2) == entries(stamped[2:])
    assert await journal.read_after(0, limit=2) == entries(stamped[:2])
    assert faults == []


async def test_read_after_waits_for_the_next_event(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    reader = asyncio.create_task(journal.read_after(0))
    await asyncio.sleep(0.05)
    assert not reader.done()
    event = journal.append(lost(1), t_us=0)
    assert await asyncio.wait_for(reader, 5.0) == entries([event])


async def test_what_a_reader_gets_is_already_in_the_file(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    for n in range(50):
        journal.append(lost(n), t_us=n)
    got: list[Entry] = []
    while len(got) < 50:
        got += await journal.read_after(got[-1][0] if got else 0)
        # A second connection, as after a crash: each event handed out is there already.
        assert entries(read_journal(path)[: len(got)]) == got
    assert len(read_journal(path)) == 50


async def test_a_reopened_journal_keeps_its_events_and_goes_on_counting(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    first = Journal(path, on_fault=faults.append)
    first.start()
    before = [first.append(lost(n), t_us=n) for n in range(3)]
    first.close()
    second = open_journal(path, faults, journals)
    second.start()
    assert second.opened_at_seq == 3
    after = second.append(CommandAudit(op="estop", role="operator", client=None, ok=True), t_us=9)
    assert after.seq == 4
    assert await second.read_after(second.opened_at_seq) == entries([after])
    assert read_journal(path) == [*before, after]
    assert read_journal(path, after=3) == [after]


async def test_a_reader_behind_the_memory_window_reads_the_file(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals, window_events=2)
    journal.start()
    stamped = [journal.append(lost(n), t_us=n) for n in range(5)]
    # All five committed: 1..3 have left the memory window.
    assert await journal.read_after(4) == entries(stamped[4:])
    assert await journal.read_after(0) == entries(stamped)
    assert await journal.read_after(3) == entries(stamped[3:])


def test_the_file_is_in_wal_mode_with_the_schema_the_record_builds_on(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.append(lost(1), t_us=5)
    journal.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
        assert columns == ["seq", "t_us", "wall_time", "kind", "body"]
        indexes = {row[1] for row in db.execute("PRAGMA index_list(events)")}
        assert "events_by_kind" in indexes
        assert db.execute("SELECT seq, t_us, kind FROM events").fetchall() == [(1, 5, "api_lost")]
    finally:
        db.close()


def test_the_writer_commits_with_synchronous_full(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    """FULL fsyncs the WAL at each commit: an acknowledged event survives a power cut."""
    journal = open_journal(path, faults, journals)
    assert journal._db is not None
    assert journal._db.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL


async def test_a_journal_that_cannot_be_opened_reports_a_fault_and_still_serves_events(
    tmp_path: Path, faults: Faults, journals: list[Journal]
) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the run directory should be")
    journal = open_journal(tmp_path / "not-a-dir" / JOURNAL_FILE, faults, journals)
    journal.start()
    event = journal.append(lost(1), t_us=0)
    assert await journal.read_after(0) == entries([event])
    await asyncio.sleep(0)
    assert len(faults) == 1 and "cannot open the journal" in faults[0] and "not-a-dir" in faults[0]


async def test_a_failed_write_is_reported_once_and_the_events_still_reach_readers(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    first = journal.append(lost(1), t_us=0)
    assert await journal.read_after(0) == entries([first])
    # Another connection makes every insert fail, as a full disk would.
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    db.commit()
    db.close()
    later = [journal.append(lost(n), t_us=n) for n in (2, 3)]
    got: list[Entry] = []
    while len(got) < 2:
        got += await journal.read_after(got[-1][0] if got else 1)
    assert got == entries(later)
    await asyncio.sleep(0.05)
    assert len(faults) == 1 and "cannot write to the journal" in faults[0], faults
    assert "disk full" in faults[0]
    assert read_journal(path) == [first]


async def test_a_journal_without_a_file_keeps_events_in_memory_without_a_fault(
    faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(None, faults, journals)
    journal.start()
    event = journal.append(lost(1), t_us=0)
    assert await journal.read_after(0) == entries([event])
    assert faults == []


async def test_an_event_that_will_not_serialise_is_a_fault_and_the_writer_lives_on(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    # Built without validation, as a bug could: a figure JSON cannot carry.
    broken = ApiLost.model_construct(reason=object())  # type: ignore[arg-type]
    journal.append(broken, t_us=0)
    after = journal.append(lost(2), t_us=1)
    assert await journal.read_after(0) == entries([after])
    await asyncio.sleep(0.05)
    assert len(faults) == 1 and "could not be journaled" in faults[0], faults
    assert read_journal(path) == [after]


async def test_a_reader_steps_over_a_lost_seq_in_memory(
    path: Path, faults: Faults, journals: list[Journal]
) -> None:
    journal = open_journal(path, faults, journals)
    journal.start()
    first = journal.append(lost(1), t_us=0)
    assert await journal.read_after(0) == entries([first])
    journal.append(ApiLost.model_construct(reason=object()), t_us=1)  # type: ignore[arg-type]
    later = [journal.append(lost(n), t_us=n) for n in (3, 4)]
    got: list[Entry] = []
    while len(got) < 2:
        got += await journal.read_after(got[-1][0] if got else first.seq)
    assert got == entries(later)
    assert await journal.read_after(3) == entries(later[1:])
    assert [e.seq for e in read_journal(path)] == [1, 3, 4]
