"""The `rig` command line: one entry point, one module per command group.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rig.cli import (
    bench_cmd,
    client_cmds,
    config_cmd,
    console_cmd,
    devices_cmd,
    firmware_cmd,
    journal_cmd,
    record_cmd,
    run_cmds,
    safety_cmd,
    simctl_cmd,
    users_cmd,
    watch_cmd,
)
from rig.logs import configure_logging

COMMAND_MODULES = [
    run_cmds,
    client_cmds,
    console_cmd,
    watch_cmd,
    simctl_cmd,
    bench_cmd,
    config_cmd,
    devices_cmd,
    firmware_cmd,
    journal_cmd,
    record_cmd,
    safety_cmd,
    users_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig", description="Ductoscopy rig control")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or JSON (default: text on a terminal, JSON otherwise)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        metavar="FILE",
        help="log to FILE (JSON lines) instead of stderr, rotated at 10 MiB, 4 old files kept",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(verbose=args.verbose, log_format=args.log_format, log_file=args.log_file)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
