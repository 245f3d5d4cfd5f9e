"""`rig firmware version|flash|calibrate`: the I/O board's firmware and its transducer's
calibration (docs/firmware.md, "Flashing" and the bring-up checklist).

All three talk to the board directly on its port, not through a running rig, and refuse a port the
rig holds (rig/cli/board_port.py says why that is safe). The port is `--port PATH` or the
profile's `devices.board.port` (`--profile FILE`, a path or usb form).

Exit status: 0 done; 1 the port or the board refused, or the calibration was refused (the
message says which); 2 no port given, a bad option, or the profile cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.ioboard.codec import BoardIdent
from drivers.ioboard.driver import DEFAULT_BAUDRATE
from drivers.transport.discovery import PortResolutionError, list_serial_ports
from firmware import calibration
from firmware.board import FIRMWARE_VERSION
from firmware.protocol import PROTOCOL_VERSION
from rig.cli.board_port import BoardPortError, format_version, identify
from rig.cli.firmware_calibrate import Calibration, CalibrationError, calibrate
from rig.cli.firmware_flash import flash
from rig.config import ProfileError, SimPort, load_profile


class UsageError(Exception):
    pass


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "firmware",
        help="the I/O board's firmware: its version, flashing it",
        description="Read the I/O board's firmware version, or flash the firmware onto its "
        "Pico (MicroPython) with mpremote. Not while a rig runs on the board's port.",
    )
    commands = parser.add_subparsers(dest="firmware_command", required=True, metavar="ACTION")
    version = commands.add_parser(
        "version", help="the board's protocol and firmware versions (IDENTIFY)"
    )
    flash_parser = commands.add_parser(
        "flash",
        help="copy the firmware onto the board, verify it, reset, check its version",
    )
    calibrate_parser = commands.add_parser(
        "calibrate",
        help="measure the transducer's zero and span against a reference pressure and write "
        "them to the board (before `flash`: the REPL must answer)",
    )
    calibrate_parser.add_argument(
        "--reference-mmhg",
        type=float,
        required=True,
        metavar="P",
        help="the reference pressure the calibrator applies, 50..300 mmHg",
    )
    for sub in (version, flash_parser, calibrate_parser):
        sub.add_argument("--port", metavar="PATH", help="the board's serial port")
        sub.add_argument(
            "--profile",
            type=Path,
            metavar="FILE",
            help="take the port and baud rate from the profile's [devices.board]",
        )
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    version.set_defaults(func=run_version)
    flash_parser.set_defaults(func=run_flash)
    calibrate_parser.set_defaults(func=run_calibrate)


def board_port(args: argparse.Namespace) -> tuple[str, int]:
    """The port and baud rate to use, from --port or the profile."""
    if args.port is not None:
        return args.port, DEFAULT_BAUDRATE
    if args.profile is None:
        raise UsageError("give the board's port: --port PATH, or --profile FILE")
    try:
        section = load_profile(args.profile).devices.board
    except ProfileError as exc:
        problems = "\n".join(f"  {problem}" for problem in exc.problems)
        raise UsageError(f"{args.profile}: not a valid profile:\n{problems}") from None
    except OSError as exc:
        raise UsageError(f"{args.profile}: cannot read: {exc.strerror or exc}") from None
    if isinstance(section.port, SimPort):
        raise UsageError(f"{args.profile}: devices.board.port is the simulator's; give --port PATH")
    try:
        return section.real_port(list_serial_ports()), section.baudrate
    except PortResolutionError as exc:
        raise UsageError(f"{args.profile}: devices.board.port: {exc}") from None


def run_version(args: argparse.Namespace) -> int:
    return _run(args, _version)


def run_flash(args: argparse.Namespace) -> int:
    return _run(args, _flash)


def run_calibrate(args: argparse.Namespace) -> int:
    return _run(args, _calibrate)


def _run(args: argparse.Namespace, action: Callable[[argparse.Namespace, str, int], None]) -> int:
    """The port from the arguments, then `action(args, port, baudrate)`; errors as exit codes."""
    try:
        port, baudrate = board_port(args)
        action(args, port, baudrate)
    except UsageError as exc:
        print(f"error: {exc}")
        return 2
    except (BoardPortError, CalibrationError) as exc:
        print(f"error: {exc}")
        return 1
    return 0


def _version(args: argparse.Namespace, port: str, baudrate: int) -> None:
    ident = identify(port, baudrate)
    report = _ident_json(port, ident)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{port}: I/O board {ident.serial_number}, protocol {ident.protocol_version}, "
        f"firmware {report['firmware_version']}"
    )
    if not report["matches_host"]:
        print(
            f"  this host expects protocol {PROTOCOL_VERSION}, firmware "
            f"{report['host_firmware_version']}: `rig firmware flash` installs it"
        )


def _flash(args: argparse.Namespace, port: str, baudrate: int) -> None:
    ident, files = flash(port, baudrate, progress=not args.json)
    report = _ident_json(port, ident)
    if args.json:
        report["files"] = [{"path": f.remote, "sha256": f.sha256} for f in files]
        print(json.dumps(report, indent=2))
        return
    print(
        f"{port}: flashed and verified {len(files)} files; the board answers protocol "
        f"{ident.protocol_version}, firmware {report['firmware_version']}"
    )


def _calibrate(args: argparse.Namespace, port: str, baudrate: int) -> None:
    # with --json, stdout is the report alone: the steps and the prompt go to stderr
    progress = sys.stderr if args.json else sys.stdout

    def say(text: str) -> None:
        print(text, file=progress, flush=True)

    def confirm(prompt: str) -> str:
        print(prompt, end="", file=progress, flush=True)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line

    try:
        result, sha256 = calibrate(port, baudrate, args.reference_mmhg, confirm, say)
    except ValueError as exc:  # the reference's range
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(_calibration_json(port, result, sha256), indent=2))
        return
    print(
        f"{port}: calibrated and verified: ZERO_CODE {result.zero_code} "
        f"({result.zero_offset_mmhg():+.2f} mmHg offset), GAIN_Q12 {result.gain_q12} "
        f"({result.sensitivity_uv_per_v():.3f} uV/V/mmHg) against {result.reference_mmhg:g} mmHg; "
        f"noise SD {result.zero.sd_mmhg:.3f} / {result.reference.sd_mmhg:.3f} mmHg"
    )
    print("  now `rig firmware flash`, then check the readings (docs/firmware.md, bring-up)")


def _calibration_json(port: str, result: Calibration, sha256: str) -> dict[str, Any]:
    return {
        "port": port,
        "file": calibration.FILE,
        "sha256": sha256,
        "zero_code": result.zero_code,
        "gain_q12": result.gain_q12,
        "reference_mmhg": result.reference_mmhg,
        "written": result.written,
        "zero_offset_mmhg": round(result.zero_offset_mmhg(), 3),
        "sensitivity_uv_per_v": round(result.sensitivity_uv_per_v(), 4),
        "averages": {
            name: {
                "mean_code": round(avg.mean_code, 1),
                "sd_mmhg": round(avg.sd_mmhg, 4),
                "drift_mmhg": round(avg.drift_mmhg, 4),
                "samples": avg.samples,
            }
            for name, avg in (("zero", result.zero), ("reference", result.reference))
        },
    }


def _ident_json(port: str, ident: BoardIdent) -> dict[str, Any]:
    return {
        "port": port,
        "serial_number": ident.serial_number,
        "protocol_version": ident.protocol_version,
        "firmware_version": format_version(ident.firmware_version),
        "host_protocol_version": PROTOCOL_VERSION,
        "host_firmware_version": format_version(FIRMWARE_VERSION),
        "matches_host": ident.protocol_version == PROTOCOL_VERSION
        and ident.firmware_version == FIRMWARE_VERSION,
    }
