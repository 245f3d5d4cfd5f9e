"""The procedure record on the command line (docs/record.md):

    rig procedure start [--ref REF] [--syringe-lot LOT]   open a procedure (as the daemon's client)
    rig procedure stop                                   close it
    rig procedure list [--journal FILE]                  the procedures in the journal
    rig procedure export PROCEDURE [--out FILE]          one archive: events, media, report, checksums
    rig procedure verify ARCHIVE                         check an archive against its manifest
    rig report PROCEDURE --out DIR                       report.html and report.pdf

`list`, `export` and `report` read the journal file itself (the running rig's by default, or
--journal), so they work while the rig runs and after it has stopped. PROCEDURE is an id, a
unique prefix of one, or a ref only one procedure has.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from drivers.transport.mqtt import JsonObject
from rig.cli.client_cmds import connection_options, print_reply, run_client, target_of
from rig.events.journal import JOURNAL_FILE
from rig.report.model import build_report, wall_clock
from rig.report.query import (
    ProcedureNotFoundError,
    find_procedure,
    list_procedures,
    procedure_events,
)
from rig.runtime import RunningRig

EXIT_FAILED = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    procedure = subparsers.add_parser("procedure", help="the procedure record")
    commands = procedure.add_subparsers(dest="procedure_command", required=True, metavar="ACTION")
    start = commands.add_parser(
        "start", help="open a procedure: everything until `rig procedure stop` is its record"
    )
    start.add_argument(
        "--ref",
        help="a pseudonymous reference (letters, digits, ._- ; never a name), up to 40 characters",
    )
    start.add_argument(
        "--syringe-lot", help="the syringe's lot number, recorded with the procedure"
    )
    connection_options(start)
    start.set_defaults(
        func=lambda a: run_client(
            _ask(a, {"op": "procedure.start", "ref": a.ref, "syringe_lot": a.syringe_lot})
        )
    )
    stop = commands.add_parser("stop", help="close the open procedure")
    connection_options(stop)
    stop.set_defaults(func=lambda a: run_client(_ask(a, {"op": "procedure.stop"})))

    listing = commands.add_parser("list", help="the procedures in the journal, oldest first")
    _journal_option(listing)
    listing.set_defaults(func=_list)
    exporting = commands.add_parser(
        "export", help="write one archive of a procedure: events, media, report and checksums"
    )
    exporting.add_argument("procedure", metavar="PROCEDURE")
    exporting.add_argument(
        "--out", type=Path, help="the archive file (default: procedure-<id>.tar here)"
    )
    _journal_option(exporting)
    exporting.set_defaults(func=_export)
    verifying = commands.add_parser(
        "verify", help="check an archive: every file present, none added, each checksum right"
    )
    verifying.add_argument("archive", type=Path, metavar="ARCHIVE")
    verifying.set_defaults(func=_verify)

    report = subparsers.add_parser(
        "report", help="write a procedure's report (report.html and report.pdf) into a directory"
    )
    report.add_argument("procedure", metavar="PROCEDURE")
    report.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where to write the two files"
    )
    _journal_option(report)
    report.set_defaults(func=_report)


def _journal_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--journal",
        type=Path,
        metavar="FILE",
        help=f"the journal file (default: {JOURNAL_FILE} of the rig `rig sim` runs)",
    )


async def _ask(args: argparse.Namespace, command: JsonObject) -> int:
    command = {key: value for key, value in command.items() if value is not None}
    target = target_of(args)
    async with target.connect() as mqtt:
        reply = await mqtt.request(target.commands, command, timeout_s=args.timeout)
    return print_reply(reply, args.json, _describe)


def _describe(result: JsonObject) -> str:
    procedure = result.get("procedure")
    if isinstance(procedure, dict):
        ref = f" (ref {procedure['ref']})" if procedure.get("ref") else ""
        return f"procedure {procedure['id']}{ref} open"
    return f"procedure {procedure} closed"


def _journal_of(args: argparse.Namespace) -> Path:
    if args.journal is not None:
        return Path(args.journal)
    running = RunningRig.load()
    if running is None:
        raise ProcedureNotFoundError("no rig is running here; name the journal with --journal")
    return Path(running.run_dir) / JOURNAL_FILE


def _list(args: argparse.Namespace) -> int:
    try:
        spans = list_procedures(_journal_of(args))
    except (ProcedureNotFoundError, sqlite3.Error) as exc:
        return _fail(exc)
    for span in spans:
        end = "open" if span.stopped_wall_time is None else wall_clock(span.stopped_wall_time)
        print(f"{span.procedure}  {wall_clock(span.started_wall_time)} .. {end}  {span.ref or ''}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from rig.report.render import write_report  # matplotlib: only for the commands that plot

    try:
        journal = _journal_of(args)
        span = find_procedure(journal, args.procedure)
        report = build_report(procedure_events(journal, span))
        html_path, pdf_path = write_report(report, journal.parent, args.out)
    except (ProcedureNotFoundError, sqlite3.Error, OSError) as exc:
        return _fail(exc)
    print(f"{html_path}\n{pdf_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from rig.report.archive import export  # matplotlib: only for the commands that plot

    try:
        journal = _journal_of(args)
        span = find_procedure(journal, args.procedure)
        out = args.out or Path(f"procedure-{span.procedure}.tar")
        written = export(journal, span, out)
    except (ProcedureNotFoundError, sqlite3.Error, OSError) as exc:
        return _fail(exc)
    print(written)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from rig.report.archive import verify

    result = verify(args.archive)
    if result.ok:
        print(f"{args.archive}: ok, {result.members} files match the manifest")
        return 0
    for problem in result.problems:
        print(f"{args.archive}: {problem}", file=sys.stderr)
    return EXIT_FAILED


def _fail(exc: BaseException) -> int:
    print(f"rig: {exc}", file=sys.stderr)
    return EXIT_FAILED
