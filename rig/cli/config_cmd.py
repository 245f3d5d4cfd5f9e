"""`rig config check FILE...` and `rig config show FILE [--json]`.

check: exit 0 when every file is a valid profile, 1 when any is not, 2 when any cannot be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from drivers.transport.discovery import describe_spec
from rig.config import (
    FIELD_BOUNDS,
    LimitsConfig,
    ProfileError,
    RigProfile,
    SimPort,
    dump_profile_toml,
    format_number,
    load_profile,
)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "config", help="check and show rig profiles", description="Rig profiles (TOML)."
    )
    actions = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="validate profiles",
        description="Validate each profile; print a summary or every problem. Exit status: "
        "0 all valid, 1 a profile is invalid, 2 a file cannot be read.",
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.set_defaults(func=run_check)

    show = actions.add_parser(
        "show",
        help="print the resolved profile",
        description="Print the profile with every default filled in.",
    )
    show.add_argument("file", type=Path, metavar="FILE")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")
    show.set_defaults(func=run_show)


def _load(path: Path) -> tuple[RigProfile | None, int]:
    """The profile, or None and an exit status after printing why."""
    try:
        return load_profile(path), EXIT_OK
    except ProfileError as exc:
        count = len(exc.problems)
        print(f"{path}: {count} problem{'' if count == 1 else 's'}")
        for problem in exc.problems:
            print(f"  {problem}")
        return None, EXIT_INVALID
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}")
        return None, EXIT_UNREADABLE


def run_check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        profile, result = _load(path)
        status = max(status, result)
        if profile is not None:
            print(f"{path}: ok")
            for line in summary_lines(profile):
                print(f"  {line}")
    return status


def run_show(args: argparse.Namespace) -> int:
    profile, result = _load(args.file)
    if profile is None:
        return result
    if args.json:
        print(json.dumps(profile.model_dump(mode="json"), indent=2))
    else:
        print(dump_profile_toml(profile), end="")
    return EXIT_OK


def _port(spec: Any) -> str:
    text = describe_spec(spec)
    return f"{text} (simulator)" if isinstance(spec, SimPort) else text


def summary_lines(profile: RigProfile) -> list[str]:
    """A short account of a valid profile: identity, broker, devices, limits in force."""
    broker = profile.broker
    if broker.private:
        broker_text = "private Mosquitto on a free loopback port"
    else:
        scheme = "mqtts" if broker.tls_ca_file else "mqtt"
        user = f", user {broker.username}" if broker.username else ", anonymous"
        broker_text = f"{scheme}://{broker.host}:{broker.port}{user}"
    pump, board, syringe = profile.devices.pump, profile.devices.board, profile.syringe
    lines = [
        f"rig_id: {profile.rig_id}",
        f"broker: {broker_text}",
        f"devices.pump: {_port(pump.port)}, {pump.baudrate} baud, address {pump.address}, "
        f"safe-mode timeout {pump.safe_mode_timeout_s} s",
        f"devices.board: {_port(board.port)}, {board.baudrate} baud, heartbeat "
        f"{board.heartbeat_period_ms} ms, watchdog {board.watchdog_timeout_ms} ms",
        f"syringe: {format_number(syringe.inner_diameter_mm)} mm inner diameter, "
        f"{format_number(syringe.volume_ml)} mL",
        "limits in force:",
    ]
    width = max(len(name) for name in LimitsConfig.model_fields)
    for name in LimitsConfig.model_fields:
        bound = FIELD_BOUNDS[f"limits.{name}"]
        value = format_number(getattr(profile.limits, name))
        shown = f"{value} {bound.unit}".rstrip()
        origin = "" if name in profile.limits.model_fields_set else "  (default)"
        lines.append(f"  {name:<{width}}  {shown}{origin}")
    if profile.simulator is not None:
        sim = profile.simulator
        lines.append(
            f"simulator: seed {sim.seed}, "
            f"pressure noise {format_number(sim.pressure_noise_mmhg)} mmHg"
        )
    return lines
