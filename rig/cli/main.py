"""The `rig` command line: one entry point, one module per command group.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the handler.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from rig.cli import bench_cmd, client_cmds, config_cmd, devices_cmd, run_cmds

COMMAND_MODULES = [run_cmds, client_cmds, bench_cmd, config_cmd, devices_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig", description="Ductoscopy rig control")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
