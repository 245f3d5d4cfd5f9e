"""`rig bench NAME`: benchmarks on the simulator, printed as figures (JSON with --json)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rig.config import DEFAULT_PROFILE, ProfileError, RigProfile, load_profile

# The benchmark modules are imported when their benchmark runs, not with the CLI: together they
# pull in OpenCV, SciPy, aiohttp and Playwright, which every other `rig` command (and the daemon,
# started as `rig daemon`) would otherwise pay for at each start.

BENCHMARKS = (
    "stop-latency",
    "board-stop",
    "envelope",
    "camera-filters",
    "camera",
    "pedal",
    "record-crash",
    "telemetry",
    "console-video",
)
DEFAULT_TRIALS = {
    "stop-latency": 200,
    "board-stop": 200,
    "envelope": 5,
    "camera-filters": 60,
    "camera": 50,
    "pedal": 500,
    "record-crash": 50,
    "telemetry": 60,
    "console-video": 20,
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser(
        "bench",
        help="run a benchmark on the simulator",
        description=(
            "stop-latency: the real daemon on the simulator over ptys and MQTT; the scope tip "
            "meets the wall while irrigating, and the time from the first sample over the limit "
            "to the stop command leaving the host is measured (about 2 s a trial). "
            "board-stop: the I/O board's own resistance stop on the stepped simulator (its "
            "firmware, the pump emulator, the line, the host's controller): the tip meets the "
            "wall with the host's fluid loop blind, and the board's time from its trigger "
            "sample to its relay opening (its own clock) is measured, then the same trial with "
            "the host live for the host's stop; then false stops on a shortened healthy "
            "envelope grid with the board's stop armed (about a minute). "
            "envelope: the rig's fluid controller on a stepped clock against the simulator's "
            "world and emulators, over every flow, pressure setpoint, bolus rate, flow change "
            "and restart: false stops on a healthy duct, and wall and occlusion detection times "
            "(about a minute). "
            "camera-filters: the three honeycomb removals (Gaussian, Fourier, core "
            "interpolation) on frames of the simulated scope camera: cost per frame, residual "
            "honeycomb, papilloma edge, detail kept; PyFibreBundle side by side where installed "
            "(about 15 s at 640x480). "
            "camera: the real daemon on the simulator with its camera at --frame-size "
            "(default 1920x1080) and --fps (30) through capture, brightness, pipeline, recording "
            "and a video viewer through the broker, while stop-latency's trial runs --trials times (default 50, "
            "about 2 s each): frames dropped, latency to the viewer, the camera process's CPU "
            "per frame against bare OpenCV decode and encode, the event loop's jitter, stop "
            "latency. "
            "pedal: the real daemon on the simulator with the emulated foot pedal on its USB "
            "bus; the irrigate pedal is pressed and let go, and the time from the release "
            "report to the pump's stop command at the pump is measured (about 0.4 s a trial). "
            "record-crash: the real daemon on the simulator is SIGKILLed at a random moment "
            "while commands flow, in each cycle, and restarted: what it acknowledged before the "
            "kill and is missing from the journal after (must be 0), and the time to ready "
            "again (a few seconds a cycle). "
            "telemetry: the real daemon on the simulator, rig console's server and Debian's "
            "Chromium showing the page; from the daemon's telemetry publish to the values in "
            "the page's DOM, while the pump irrigates. "
            "console-video: the real daemon on the simulator with its camera at --frame-size "
            "(default 1920x1080) and --fps (30), rig console's server and Chromium: from each "
            "frame's capture to its drawing on the page, through the broker and the console's "
            "server (docs/console.md)."
        ),
    )
    bench.add_argument("name", choices=BENCHMARKS)
    bench.add_argument(
        "--trials",
        type=int,
        default=None,
        help="stop-latency, board-stop: trials (default 200); envelope: wall and occlusion trials "
        "per grid point (default 5); camera-filters: frames (default 60); camera: stop trials "
        "during the video (default 50); pedal: trials (default 500); "
        "record-crash: kill cycles (default 50); telemetry: seconds (default 60); "
        "console-video: seconds (default 20)",
    )
    bench.add_argument(
        "--flow-ml-min",
        type=float,
        default=None,
        help="stop-latency: the irrigation flow in mL/min, within the profile's "
        "limits.min_flow_for_resistance_ml_min .. limits.max_flow_ml_min (default 1.0)",
    )
    bench.add_argument(
        "--flows",
        type=int,
        default=None,
        help="envelope, board-stop's healthy grid: log-spaced irrigation flows from the "
        "profile's minimum to its maximum (at least 2; default 10, board-stop 5)",
    )
    bench.add_argument(
        "--frame-size",
        default=None,
        help="camera-filters, camera: the camera's frame size, WIDTHxHEIGHT (default 640x480 "
        "for camera-filters, 1920x1080 for camera)",
    )
    bench.add_argument(
        "--fps", type=float, default=30.0, help="camera: the camera's rate (default 30)"
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
    from rig.bench.session import BenchError

    trials = args.trials if args.trials is not None else DEFAULT_TRIALS[args.name]
    if trials < 1:
        print(f"--trials = {trials}: expected at least 1", file=sys.stderr)
        return 2
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"{args.profile}:\n{exc}", file=sys.stderr)
        return 1
    try:
        if args.name == "envelope":
            result = _envelope(args, profile, trials)
        elif args.name == "board-stop":
            result = _board_stop(args, profile, trials)
        elif args.name == "camera-filters":
            result = _camera_filters(args.frame_size or "640x480", trials)
        elif args.name == "camera":
            from rig.bench.camera import SimCamera, run_camera

            width, height = _frame_size(args.frame_size or "1920x1080")
            if not 5 <= args.fps <= 60:
                print(f"--fps = {args.fps:g}: expected 5 to 60", file=sys.stderr)
                return 2
            camera = SimCamera(width, height, args.fps)
            result = asyncio.run(
                run_camera(args.profile, profile, trials, camera, progress=not args.json)
            )
        elif args.name == "console-video":
            from rig.bench.camera import SimCamera
            from rig.bench.console_video import run_console_video

            camera = SimCamera(*_frame_size(args.frame_size or "1920x1080"), args.fps)
            result = asyncio.run(run_console_video(args.profile, profile, float(trials), camera))
        elif args.name == "telemetry":
            from rig.bench.telemetry_latency import run_telemetry_latency

            result = asyncio.run(run_telemetry_latency(args.profile, profile, float(trials)))
        elif args.name == "record-crash":
            from rig.bench.record_crash import run_record_crash

            result = asyncio.run(
                run_record_crash(args.profile, profile, trials, progress=not args.json)
            )
        elif args.name == "pedal":
            from rig.bench.pedal_latency import run_pedal_latency

            result = asyncio.run(
                run_pedal_latency(args.profile, profile, trials, progress=not args.json)
            )
        else:
            from rig.bench.stop_latency import FLOW_ML_MIN, run_stop_latency

            flow = FLOW_ML_MIN if args.flow_ml_min is None else args.flow_ml_min
            limits = profile.limits
            low, high = limits.min_flow_for_resistance_ml_min, limits.max_flow_ml_min
            if not low <= flow <= high:
                print(
                    f"--flow-ml-min = {flow:g}: expected {low:g} to {high:g} mL/min "
                    "(the profile's limits)",
                    file=sys.stderr,
                )
                return 2
            result = asyncio.run(
                run_stop_latency(
                    args.profile,
                    profile,
                    trials,
                    progress=not args.json,
                    flow_ml_min=flow,
                )
            )
    except BenchError as exc:
        print(f"rig bench {args.name}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>28}  {value}")
    return 0


def _camera_filters(frame_size: str, frames: int) -> dict[str, Any]:
    from rig.bench.camera_filters import run_camera_filters

    return run_camera_filters(*_frame_size(frame_size), frames)


def _frame_size(frame_size: str) -> tuple[int, int]:
    from rig.bench.session import BenchError

    width, _, height = frame_size.partition("x")
    if not (
        width.isdigit()
        and height.isdigit()
        and 160 <= int(width) <= 3840
        and 120 <= int(height) <= 2160
    ):
        raise BenchError(
            f"--frame-size = {frame_size!r}: expected WIDTHxHEIGHT from 160x120 to 3840x2160"
        )
    return int(width), int(height)


def _envelope(args: argparse.Namespace, profile: RigProfile, trials: int) -> dict[str, Any]:
    from rig.bench.envelope import EnvelopeGrid, run_envelope

    flows = _grid_flows(args, 10)
    grid = EnvelopeGrid.for_profile(profile, flows=flows, trials=trials)
    # Every stop of every trial is logged as a warning: thousands of lines of noise here.
    logging.disable(logging.WARNING)
    progress = None if args.json else (lambda message: print(message, flush=True))
    figures = asyncio.run(run_envelope(profile, grid, progress=progress))
    return {"benchmark": "envelope", "trials_per_point": trials, **figures}


def _grid_flows(args: argparse.Namespace, default: int) -> int:
    from rig.bench.session import BenchError

    flows: int = default if args.flows is None else args.flows
    if flows < 2:
        raise BenchError(f"--flows = {flows}: expected at least 2")
    return flows


def _board_stop(args: argparse.Namespace, profile: RigProfile, trials: int) -> dict[str, Any]:
    from rig.bench.board_stop import GRID_FLOWS, healthy_grid, run_board_stop

    grid = healthy_grid(profile, _grid_flows(args, GRID_FLOWS))
    # Every stop of every trial is logged as a warning: hundreds of lines of noise here.
    logging.disable(logging.WARNING)
    progress = None if args.json else (lambda message: print(message, flush=True))
    return asyncio.run(run_board_stop(profile, trials, grid, progress=progress))
