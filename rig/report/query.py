"""Procedures as the journal holds them: which there are, and the events of one.

A procedure is the run of events from its `procedure_started` to its `procedure_stopped` (or to
the journal's end while it is open). Reads the file directly: SQLite in WAL mode lets this
reader run beside the daemon's writer.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from rig.events.models import EventBase, ProcedureStarted, ProcedureStopped, parse_event


class ProcedureNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class ProcedureSpan:
    procedure: str
    ref: str | None
    started_wall_time: float
    stopped_wall_time: float | None
    first_seq: int
    last_seq: int | None
    """Its procedure_stopped's seq; None while it is open."""


def list_procedures(journal: Path) -> list[ProcedureSpan]:
    """Every procedure in the journal, oldest first."""
    db = _connect(journal)
    try:
        rows = db.execute(
            "SELECT body FROM events WHERE kind IN ('procedure_started', 'procedure_stopped') "
            "ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    spans: dict[str, ProcedureSpan] = {}
    for (body,) in rows:
        event = parse_event(body)
        if isinstance(event, ProcedureStarted):
            spans[event.procedure] = ProcedureSpan(
                event.procedure, event.ref, event.wall_time, None, event.seq, None
            )
        elif isinstance(event, ProcedureStopped) and event.procedure in spans:
            started = spans[event.procedure]
            spans[event.procedure] = ProcedureSpan(
                started.procedure,
                started.ref,
                started.started_wall_time,
                event.wall_time,
                started.first_seq,
                event.seq,
            )
    return list(spans.values())


def find_procedure(journal: Path, name: str) -> ProcedureSpan:
    """The procedure `name` names: its id, a unique prefix of it, or its ref if only one
    procedure has that ref; ProcedureNotFoundError says why not."""
    spans = list_procedures(journal)
    for match in (
        [s for s in spans if s.procedure == name],
        [s for s in spans if s.procedure.startswith(name)],
        [s for s in spans if s.ref == name],
    ):
        if len(match) == 1:
            return match[0]
        if len(match) > 1:
            ids = ", ".join(s.procedure for s in match)
            raise ProcedureNotFoundError(f"{name!r} names {len(match)} procedures: {ids}")
    raise ProcedureNotFoundError(
        f"no procedure {name!r} in {journal} ({len(spans)} procedures; `rig procedure list`)"
    )


def procedure_rows(journal: Path, span: ProcedureSpan) -> list[tuple[int, str]]:
    """The procedure's events as the journal holds them: (seq, JSON text), oldest first."""
    db = _connect(journal)
    try:
        rows: list[tuple[int, str]] = db.execute(
            "SELECT seq, body FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq",
            (span.first_seq, span.last_seq if span.last_seq is not None else 2**62),
        ).fetchall()
    finally:
        db.close()
    return rows


def procedure_events(journal: Path, span: ProcedureSpan) -> list[EventBase]:
    return [parse_event(body) for _, body in procedure_rows(journal, span)]


def _connect(journal: Path) -> sqlite3.Connection:
    if not journal.is_file():
        raise ProcedureNotFoundError(f"{journal}: no such journal")
    # Read-only: a report must never create or change a journal.
    return sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
