"""`rig devices [--json] [--profile FILE]`: what is plugged in, and what a profile would use.

While `rig sim` runs, the simulator's devices are listed too: the pseudo-terminals it made (found
from the note `rig sim` leaves), which pyserial's port listing cannot see. Listing never opens a
port. Exit status: 0, also when nothing is attached; with --profile, 1
when the profile is invalid or one of its (non-simulated) devices cannot be resolved to
exactly one attached port, 2 when the profile cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drivers.transport.discovery import (
    PortResolutionError,
    SerialPortInfo,
    UsbScan,
    describe_spec,
    list_serial_ports,
    list_usb_devices,
)
from rig.config import ProfileError, RigProfile, SimPort, load_profile
from rig.runtime import RunningRig, pid_alive

UNKNOWN = "?"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devices",
        help="list serial ports and USB devices",
        description="List attached serial ports and USB devices, mark the ones this rig "
        "knows, and (with --profile) which profile device each one is.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="show which port each profile device uses"
    )
    parser.set_defaults(func=run_devices)


def _resolve_profile(
    profile: RigProfile, ports: list[SerialPortInfo]
) -> tuple[dict[str, dict[str, str | None]], bool]:
    """Per profile device: its spec and resolved port (or the reason there is none)."""
    result: dict[str, dict[str, str | None]] = {}
    all_found = True
    for name, section in profile.devices.sections().items():
        spec = section.port
        entry: dict[str, str | None] = {
            "spec": describe_spec(spec),
            "port": None,
            "simulator": None,
            "error": None,
        }
        if isinstance(spec, SimPort):
            entry["simulator"] = "supplied by the simulator at run time"
        else:
            try:
                entry["port"] = section.real_port(ports)
            except PortResolutionError as exc:
                entry["error"] = str(exc)
                all_found = False
        result[f"devices.{name}"] = entry
    return result, all_found


def run_devices(args: argparse.Namespace) -> int:
    profile: RigProfile | None = None
    if args.profile is not None:
        try:
            profile = load_profile(args.profile)
        except ProfileError as exc:
            print(f"{args.profile}: not a valid profile (run `rig config check {args.profile}`)")
            for problem in exc.problems:
                print(f"  {problem}")
            return 1
        except OSError as exc:
            print(f"{args.profile}: cannot read: {exc.strerror or exc}")
            return 2

    ports = list_serial_ports()
    usb = list_usb_devices()
    simulated = simulator_devices()
    matches: dict[str, dict[str, str | None]] = {}
    all_found = True
    if profile is not None:
        matches, all_found = _resolve_profile(profile, ports)

    if args.json:
        print(json.dumps({**_as_json(ports, usb, matches), "simulator": simulated}, indent=2))
    else:
        for line in [*_text_lines(ports, usb, matches, args.profile), *_sim_lines(simulated)]:
            print(line)
    return 0 if all_found else 1


def simulator_devices() -> dict[str, object] | None:
    """The running simulator's devices: name -> its link in the run directory and the pty it
    points at; None when no `rig sim` runs."""
    running = RunningRig.load()
    if running is None or not pid_alive(running.launcher_pid):
        return None
    devices = {
        link.name: {"link": str(link), "port": os.path.realpath(link)}
        for link in sorted(running.link_dir.glob("*"))
        if link.is_symlink() and link.exists()
    }
    return {"rig_id": running.rig_id, "run_dir": running.run_dir, "devices": devices}


def _sim_lines(simulated: dict[str, object] | None) -> list[str]:
    if simulated is None:
        return []
    lines = [f"Simulator (rig {simulated['rig_id']}, `rig sim` running):"]
    devices = simulated["devices"]
    assert isinstance(devices, dict)
    if not devices:
        lines.append("  no simulated devices")
    for name, device in devices.items():
        lines.append(f"  {name:<6} {device['port']}  (link {device['link']})")
    return lines


def _roles_by_port(
    ports: list[SerialPortInfo], matches: dict[str, dict[str, str | None]]
) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for role, entry in matches.items():
        resolved = entry["port"]
        if resolved is None:
            continue
        for port in ports:
            if resolved in port.names():
                roles.setdefault(port.device, []).append(role)
    return roles


def _as_json(
    ports: list[SerialPortInfo], usb: UsbScan, matches: dict[str, dict[str, str | None]]
) -> dict[str, object]:
    roles = _roles_by_port(ports, matches)
    return {
        "serial_ports": [
            {
                **asdict(port),
                "vid_pid": port.vid_pid,
                "known_as": port.known_as,
                "profile_devices": roles.get(port.device, []),
            }
            for port in ports
        ],
        "usb": {
            "error": usb.error,
            "devices": [
                {**asdict(dev), "vid_pid": dev.vid_pid, "known_as": dev.known_as}
                for dev in usb.devices
            ],
        },
        "profile": matches or None,
    }


def _text_lines(
    ports: list[SerialPortInfo],
    usb: UsbScan,
    matches: dict[str, dict[str, str | None]],
    profile_path: Path | None,
) -> list[str]:
    roles = _roles_by_port(ports, matches)
    lines = ["Serial ports:"]
    if not ports:
        lines.append("  no serial ports found")
    for port in ports:
        fields = [port.device, port.vid_pid or "no USB id"]
        if port.vid_pid:
            fields.append(f"serial {port.serial_number or UNKNOWN}")
        maker = " ".join(x for x in (port.manufacturer, port.product) if x)
        if maker:
            fields.append(maker)
        elif port.description:
            fields.append(port.description)
        if port.known_as:
            fields.append(f"[{port.known_as}]")
        if port.device in roles:
            fields.append("<- " + ", ".join(roles[port.device]))
        lines.append("  " + "  ".join(fields))
        if port.by_id:
            lines.append(f"    by-id: {port.by_id}")

    lines.append("USB devices:")
    if usb.error is not None:
        lines.append(f"  cannot list USB devices: {usb.error}")
    elif not usb.devices:
        lines.append("  no USB devices found")
    for dev in usb.devices:
        fields = [
            f"bus {dev.bus:03d} address {dev.address:03d}",
            dev.vid_pid,
            f"serial {dev.serial_number or UNKNOWN}",
            f"product {dev.product or UNKNOWN}",
        ]
        if dev.known_as:
            fields.append(f"[{dev.known_as}]")
        lines.append("  " + "  ".join(fields))

    if profile_path is not None:
        lines.append(f"Profile {profile_path}:")
        for role, entry in matches.items():
            if entry["error"] is not None:
                lines.append(f"  {role}: NOT FOUND: {entry['error']}")
            else:
                outcome = entry["port"] or entry["simulator"]
                lines.append(f"  {role}: {entry['spec']} -> {outcome}")
    return lines
