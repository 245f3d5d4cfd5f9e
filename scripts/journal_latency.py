"""Measure the journal's cost to the event loop (issue 7, item 3): run with .venv/bin/python.

Three figures, for synchronous=FULL (the daemon's) and NORMAL, and for no file at all:
- append: the time `Journal.append` takes on the event loop (what a stop listener pays);
- commit: from append until a reader gets the event (committed, fsynced): the API's extra delay;
- stall: the worst lateness of a 1 ms ticker on the same loop while events are appended in
  bursts, against the same run without a journal file (the fluid loop's view of journaling).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rig.events import journal as journal_module
from rig.events.journal import Journal
from rig.events.models import CommandAudit

BURSTS = 200
BURST_EVENTS = 20
BURST_PERIOD_S = 0.01
TICK_S = 0.001


def _event(n: int) -> CommandAudit:
    return CommandAudit(op="fluid.irrigate", role="operator", client=f"c{n}", ok=True)


async def _ticker(lateness_s: list[float], stop: asyncio.Event) -> None:
    next_s = time.perf_counter()
    while not stop.is_set():
        next_s += TICK_S
        await asyncio.sleep(max(0.0, next_s - time.perf_counter()))
        lateness_s.append(time.perf_counter() - next_s)


async def _run(path: Path | None) -> dict[str, float]:
    journal = Journal(path, on_fault=lambda reason: print("FAULT", reason, file=sys.stderr))
    journal.start()
    append_s: list[float] = []
    commit_s: list[float] = []
    lateness_s: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lateness_s, stop))
    cursor = journal.opened_at_seq
    for burst in range(BURSTS):
        started = time.perf_counter()
        for n in range(BURST_EVENTS):
            t0 = time.perf_counter()
            last = journal.append(_event(burst * BURST_EVENTS + n), t_us=0)
            append_s.append(time.perf_counter() - t0)
        while cursor < last.seq:
            cursor = (await journal.read_after(cursor))[-1][0]
        commit_s.append(time.perf_counter() - started)
        await asyncio.sleep(max(0.0, BURST_PERIOD_S - (time.perf_counter() - started)))
    stop.set()
    await ticker
    await asyncio.to_thread(journal.close)
    return {
        "append_p50_us": statistics.median(append_s) * 1e6,
        "append_p99_us": statistics.quantiles(append_s, n=100)[98] * 1e6,
        "append_max_us": max(append_s) * 1e6,
        "commit_p50_ms": statistics.median(commit_s) * 1e3,
        "commit_p99_ms": statistics.quantiles(commit_s, n=100)[98] * 1e3,
        "commit_max_ms": max(commit_s) * 1e3,
        "tick_late_p99_ms": statistics.quantiles(lateness_s, n=100)[98] * 1e3,
        "tick_late_max_ms": max(lateness_s) * 1e3,
    }


def main() -> None:
    print(f"{BURSTS} bursts of {BURST_EVENTS} events every {BURST_PERIOD_S * 1e3:.0f} ms")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        runs: list[tuple[str, Path | None]] = [
            ("no file", None),
            ("NORMAL", Path(tmp) / "normal.sqlite"),
            ("FULL", Path(tmp) / "full.sqlite"),
        ]
        opened = journal_module._open
        for name, path in runs:
            if name == "NORMAL":

                def _normal(p: Path) -> tuple[sqlite3.Connection, int]:
                    db, last = opened(p)
                    db.execute("PRAGMA synchronous=NORMAL")
                    return db, last

                journal_module._open = _normal
            figures = asyncio.run(_run(path))
            journal_module._open = opened
            print(f"{name:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
