"""`rig bench NAME`: benchmarks on the simulator, printed as figures (JSON with --json)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from rig.bench.stop_latency import BenchError, run_stop_latency
from rig.config import DEFAULT_PROFILE, ProfileError, load_profile

BENCHMARKS = ("stop-latency",)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="run a benchmark on the simulator")
    bench.add_argument("name", choices=BENCHMARKS)
    bench.add_argument(
        "--trials", type=int, default=200, help="trials to run, at least 1 (default 200)"
    )
    bench.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help=f"a simulator profile (default {DEFAULT_PROFILE.name})",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.trials < 1:
        print(f"--trials = {args.trials}: expected at least 1", file=sys.stderr)
        return 2
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"{args.profile}:\n{exc}", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(
            run_stop_latency(args.profile, profile, args.trials, progress=not args.json)
        )
    except BenchError as exc:
        print(f"rig bench {args.name}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}  {value}")
    return 0
