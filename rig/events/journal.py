"""The append-only journal of events: SQLite in WAL mode, between the daemon and its API.

- The daemon appends on its event loop and never waits for the disk: `append` stamps the event
  with its sequence number and hands it to a writer thread, which commits in batches with
  `synchronous=FULL` (the WAL is fsynced at each commit, so a committed event survives a power
  cut, not only a killed process).
- Readers get committed events only (`read_after`, by cursor), as the JSON text the file holds:
  the API publishes those bytes, so whatever it has published is on disk, byte for byte, and
  nothing is dropped while the broker is away.
- A journal that cannot be opened or written is a fault of the journal, reported once through
  `on_fault`, never an exception into the daemon: events still reach the API from memory, but
  are no longer durable.

The table is the record's foundation (procedures, reports and export are built on it): one row
per event with its stamps and kind as columns and the whole event as JSON, so a new kind or field
needs no migration. `user_version` numbers the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from drivers.realtime import join_control_loop
from rig.events.models import EventBase, parse_event

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.sqlite"
"""The journal's name in a daemon's run directory."""
SCHEMA_VERSION = 1
WINDOW_EVENTS = 10_000
"""Committed events kept in memory for readers; older ones are read back from the file."""
MAX_BATCH_EVENTS = 500
"""At most this many events per commit: bounds one transaction after a burst."""
READ_LIMIT_EVENTS = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    t_us INTEGER NOT NULL,
    wall_time REAL NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, seq);
"""

E = TypeVar("E", bound=EventBase)
Entry = tuple[int, bytes]
"""A committed event as readers get it: its seq and its JSON text. Plain tuples of atoms, so the
window costs the garbage collector nothing (10 000 models in memory made a full collection, and
so the event loop's stall, tens of milliseconds longer: scripts/journal_latency.py)."""


class JournalError(Exception):
    pass


class Journal:
    """`path` None keeps the events in memory only (a daemon built without a run directory,
    as the unit tests build it); the daemon's command line always gives a file."""

    def __init__(
        self,
        path: Path | None,
        *,
        on_fault: Callable[[str], None],
        window_events: int = WINDOW_EVENTS,
    ) -> None:
        self.path = path
        self._on_fault = on_fault
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[EventBase | None] = queue.SimpleQueue()
        self._window: deque[Entry] = deque(maxlen=window_events)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new = asyncio.Event()
        self._reader = ThreadPoolExecutor(
            1, thread_name_prefix="journal reader", initializer=join_control_loop
        )
        self._reader_db: sqlite3.Connection | None = None
        self._closed = False
        self.fault: str | None = None
        self._db: sqlite3.Connection | None = None
        last_seq = 0
        if path is not None:
            try:
                self._db, last_seq = _open(path)
            except (sqlite3.Error, OSError, JournalError) as exc:
                self._fail(f"cannot open the journal {path}: {exc}; events are not durable")
        self.opened_at_seq = last_seq
        """The last sequence number before this run: the run's events follow it."""
        self._next_seq = last_seq + 1
        self._committed_seq = last_seq
        self._writer = threading.Thread(target=self._write_loop, name="journal writer", daemon=True)
        self._writer.start()

    def start(self) -> None:
        """Bind to the running event loop: wake-ups and fault reports go to it from now on."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
            fault = self.fault
        if fault is not None:
            loop.call_soon(self._on_fault, fault)

    def append(self, event: E, *, t_us: int) -> E:
        """Stamp `event` (seq, t_us, wall time) and queue it for the writer; never blocks on I/O."""
        with self._lock:
            stamped = event.model_copy(
                update={"seq": self._next_seq, "t_us": t_us, "wall_time": time.time()}
            )
            self._next_seq += 1
            self._queue.put(stamped)
        return stamped

    @property
    def committed_seq(self) -> int:
        return self._committed_seq

    async def read_after(self, cursor: int, limit: int = READ_LIMIT_EVENTS) -> list[Entry]:
        """The committed events after sequence number `cursor`, oldest first (at most `limit`),
        as (seq, JSON text); waits until there is at least one."""
        if self._loop is None:
            raise RuntimeError("Journal.start() must bind the event loop before reading")
        while True:
            self._new.clear()
            with self._lock:
                committed = self._committed_seq
                oldest = self._window[0][0] if self._window else committed + 1
                if committed > cursor >= oldest - 1:
                    return self._window_after(cursor, limit)
            if committed > cursor:
                # Behind the window: read the file (off the event loop).
                stored = await asyncio.get_running_loop().run_in_executor(
                    self._reader, self._select_after, cursor, limit
                )
                if stored:
                    return stored
                with self._lock:
                    gap = list(itertools.islice(self._window, 0, limit))
                log.error(
                    "journal: events %d..%d are neither in memory nor on disk; going on from %d",
                    cursor + 1,
                    oldest - 1,
                    oldest,
                )
                return gap
            await self._new.wait()

    async def wait_committed(self, seq: int, timeout_s: float) -> bool:
        """Wait until event `seq`, and so every event before it, is committed to the file.

        True once it is on disk, or when nothing was promised (a journal kept in memory only);
        False if the journal has a fault or the commit did not come within `timeout_s` (a disk
        that stalls must not hold an answer for ever)."""
        if self.path is None:
            return True
        if self._loop is None:
            raise RuntimeError("Journal.start() must bind the event loop before waiting")
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._new.clear()
                    with self._lock:
                        committed, fault = self._committed_seq, self.fault
                    if fault is not None:
                        return False
                    if committed >= seq:
                        return True
                    await self._new.wait()
        except TimeoutError:
            return False

    def _window_after(self, cursor: int, limit: int) -> list[Entry]:
        """The window's entries after `cursor`; the caller holds the lock."""
        window = self._window
        start = min(cursor + 1 - window[0][0], len(window) - 1)
        if window[start][0] != cursor + 1:
            # A seq lost to an event that could not be serialised: find the place by looking.
            start = next(i for i, (seq, _) in enumerate(window) if seq > cursor)
        return list(itertools.islice(window, start, start + limit))

    def close(self) -> None:
        """Write what is queued, then close. Blocks until the writer is done: call it off the
        event loop (asyncio.to_thread) or when the loop has stopped."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._reader.submit(self._close_reader).result()
        self._reader.shutdown()

    # -- the writer thread ----------------------------------------------------------------

    def _write_loop(self) -> None:
        # Just below the loop where it is real-time: preempted while it holds the GIL, this
        # thread would hold the loop up (a 31 ms wait that was neither CPU nor run queue).
        join_control_loop()
        done = False
        while not done:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH_EVENTS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            self._committed(self._write(batch))
        if self._db is not None:
            self._db.close()

    def _write(self, batch: list[EventBase]) -> list[Entry]:
        """Write `batch` in one transaction; return its entries for the readers."""
        rows = [(e.seq, e.t_us, e.wall_time, e.kind, body) for e, body in self._serialised(batch)]
        entries = [(row[0], row[4].encode()) for row in rows]
        db = self._db
        if db is None or not rows:
            return entries
        try:
            with db:  # one transaction: committed (and fsynced) or rolled back whole
                db.executemany(
                    "INSERT INTO events (seq, t_us, wall_time, kind, body) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        except (sqlite3.Error, OSError) as exc:
            # Latched until the daemon restarts: a journal with holes is worse than one that
            # says where it stopped.
            self._db = None
            with contextlib.suppress(sqlite3.Error):
                db.close()
            self._fail(
                f"cannot write to the journal {self.path}: {exc}; events are no longer durable"
            )
        return entries

    def _serialised(self, batch: list[EventBase]) -> list[tuple[EventBase, str]]:
        serialised = []
        for event in batch:
            try:
                serialised.append((event, event.model_dump_json()))
            except Exception as exc:
                # A bug (a value JSON cannot carry): this event is lost, loudly; the others are
                # written, and readers step over its seq.
                log.error(
                    "journal: event %d (%s) cannot be serialised: %r", event.seq, event.kind, exc
                )
                self._fail(f"an event could not be journaled: {exc!r}")
        return serialised

    def _committed(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self._window.extend(entries)
            self._committed_seq = entries[-1][0]
            loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is reading
                loop.call_soon_threadsafe(self._new.set)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.fault is not None:
                return
            self.fault = reason
            loop = self._loop
        log.error("journal fault: %s", reason)
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_fault, reason)

    # -- the reader thread ----------------------------------------------------------------

    def _select_after(self, cursor: int, limit: int) -> list[Entry]:
        if self.path is None:
            return []
        try:
            if self._reader_db is None:
                self._reader_db = sqlite3.connect(self.path)
            rows = _select(self._reader_db, cursor, limit)
            return [(seq, body.encode()) for seq, body in rows]
        except (sqlite3.Error, OSError) as exc:
            log.error("reading the journal %s failed: %s", self.path, exc)
            return []

    def _close_reader(self) -> None:
        if self._reader_db is not None:
            self._reader_db.close()
            self._reader_db = None


def read_journal(path: Path, *, after: int = 0, last: int | None = None) -> list[EventBase]:
    """The events in the journal file at `path` after sequence number `after` (only the `last`
    so many, if given), oldest first."""
    db = sqlite3.connect(path)
    try:
        if last is not None:
            (newest,) = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
            after = max(after, newest - last)
        return [parse_event(body) for _, body in _select(db, after, -1)]
    finally:
        db.close()


def last_of_kind(path: Path, kinds: tuple[str, ...]) -> EventBase | None:
    """The newest event in the journal file at `path` whose kind is one of `kinds`, or None
    (also when there is no file yet). Blocking: call it off the event loop."""
    if not path.is_file():
        return None
    db = sqlite3.connect(path)
    try:
        marks = ", ".join("?" * len(kinds))
        row = db.execute(
            f"SELECT body FROM events WHERE kind IN ({marks}) ORDER BY seq DESC LIMIT 1", kinds
        ).fetchone()
    finally:
        db.close()
    return None if row is None else parse_event(row[0])


def _select(db: sqlite3.Connection, after: int, limit: int) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = db.execute(
        "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    return rows


def _open(path: Path) -> tuple[sqlite3.Connection, int]:
    """Open (or create) the journal; return the connection and the last sequence number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer thread uses the connection from here on; nothing else touches it.
    db = sqlite3.connect(path, check_same_thread=False)
    try:
        (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode != "wal":
            raise JournalError(f"journal_mode is {mode!r}, expected 'wal'")
        db.execute("PRAGMA synchronous=FULL")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"schema version {version} is newer than this daemon's ({SCHEMA_VERSION})"
            )
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        (last_seq,) = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    except BaseException:
        db.close()
        raise
    return db, int(last_seq)
