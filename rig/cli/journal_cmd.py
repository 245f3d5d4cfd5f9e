"""`rig journal tail [-n N] [--json] [--journal FILE]`: the last events the daemon journaled.

It reads the journal file directly (a second reader of an SQLite file in WAL mode disturbs
neither the daemon nor its writes), so it works while the rig runs and after it has stopped or
died. Without --journal it reads the journal of the rig `rig sim` is running. Exit status 0;
1 when there is no journal to read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from rig.events.journal import JOURNAL_FILE, read_journal
from rig.runtime import RunningRig

_STAMPS = ("kind", "seq", "t_us", "wall_time")


def register(subparsers: Any) -> None:
    journal: argparse.ArgumentParser = subparsers.add_parser(
        "journal", help="read the daemon's event journal"
    )
    commands = journal.add_subparsers(dest="journal_command", required=True, metavar="COMMAND")
    tail = commands.add_parser("tail", help="print the last events, oldest first")
    tail.add_argument("-n", type=int, default=20, metavar="N", help="how many events (default 20)")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help=f"the journal file (default: {JOURNAL_FILE} of the rig `rig sim` runs)",
    )
    tail.set_defaults(func=_tail)


def _tail(args: argparse.Namespace) -> int:
    path: Path | None = args.journal
    if path is None:
        running = RunningRig.load()
        if running is None:
            print(
                "rig journal: no rig is running here; name the file with --journal", file=sys.stderr
            )
            return 1
        path = Path(running.run_dir) / JOURNAL_FILE
    if not path.is_file():
        print(f"rig journal: {path}: no such journal", file=sys.stderr)
        return 1
    try:
        events = read_journal(path, last=max(args.n, 0))
    except sqlite3.Error as exc:
        print(f"rig journal: {path}: {exc}", file=sys.stderr)
        return 1
    for event in events:
        data = event.as_json()
        if args.json:
            print(json.dumps(data))
            continue
        when = datetime.datetime.fromtimestamp(data["wall_time"]).isoformat(timespec="milliseconds")
        rest = {k: v for k, v in data.items() if k not in _STAMPS and v is not None}
        print(f"{data['seq']:>6} {when} {data['kind']:<24} {json.dumps(rest)}")
    return 0
