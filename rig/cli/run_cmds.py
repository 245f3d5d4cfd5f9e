"""`rig sim` and `rig daemon`: the commands that run the rig rather than talk to it."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path

from drivers.realtime import run_as_control_loop
from drivers.transport.discovery import PortResolutionError, list_serial_ports
from rig.api.roles import ServiceUser, load_credentials
from rig.config import (
    DEFAULT_PROFILE,
    ProfileError,
    RigProfile,
    SimPort,
    load_profile,
)
from rig.daemon import BrokerAddress, RigDaemon
from rig.devices.section import DeviceSection
from rig.devices.sections import device_names
from rig.events.journal import JOURNAL_FILE
from rig.launcher import run_sim
from rig.runtime import runtime_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser(
        "sim", help="run the whole rig on the simulator (broker, simulator, daemon)"
    )
    sim.add_argument(
        "--profile", type=Path, default=DEFAULT_PROFILE, help="a profile with a [simulator] section"
    )
    sim.add_argument(
        "--camera",
        action="store_true",
        help="with the simulated scope camera when the profile has no [devices.camera] (its "
        "defaults: 640x480 at 30 fps; a capture process of its own). `./run sim` adds it: the "
        "console then shows the scope's video",
    )
    for name, what in device_names():
        sim.add_argument(
            f"--{name}-port",
            metavar="PORT",
            help=f"{what} is the real one on PORT (a hybrid bench: the other devices stay "
            f"simulated); also when the profile's devices.{name}.port is a path or usb spec",
        )
    sim.set_defaults(func=_sim)

    daemon = subparsers.add_parser(
        "daemon", help="run the control daemon against a profile's devices"
    )
    daemon.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help=f"the rig's profile (default {DEFAULT_PROFILE.name})",
    )
    for name, what in device_names():
        daemon.add_argument(
            f"--{name}-port",
            metavar="PORT",
            help=f"serial port of {what} (required for a simulator profile)",
        )
    daemon.add_argument("--broker", help="HOST:PORT, overriding the profile's broker")
    daemon.add_argument(
        "--credentials", type=Path, help="JSON user -> password (the simulator's broker)"
    )
    daemon.add_argument(
        "--user", default=ServiceUser.DAEMON.value, help="broker user name (default rigd)"
    )
    daemon.add_argument(
        "--camera-user",
        default=ServiceUser.CAMERA.value,
        help="the camera process's broker user name, with --credentials (default rigcam)",
    )
    daemon.add_argument(
        "--journal",
        type=Path,
        help="the event journal, an SQLite file (default: <runtime dir>/<rig id>/"
        f"{JOURNAL_FILE}; `rig sim` puts it in its run directory)",
    )
    daemon.set_defaults(func=_daemon)


def _load(path: Path) -> RigProfile | None:
    try:
        return load_profile(path)
    except ProfileError as exc:
        print(f"{path}:\n{exc}", file=sys.stderr)
        return None


def _real_ports(args: argparse.Namespace, profile: RigProfile) -> dict[str, str]:
    """The devices that are real on this bench: named with --X-port, or by a profile whose port
    for them is not `{ sim = ... }`. Each must be attached (or a pseudo-terminal) now."""
    attached = list_serial_ports()
    real: dict[str, str] = {}
    for name, section in profile.devices.sections().items():
        override = getattr(args, f"{name}_port")
        spec = section.port
        if override:
            try:
                real[name] = section.port_override(override, attached)
            except PortResolutionError as exc:
                raise PortResolutionError(f"--{name}-port {override}: {exc}") from None
        elif not isinstance(spec, SimPort):
            real[name] = section.real_port(attached)
    return real


SIM_CAMERA_SECTION = '\n[devices.camera]\nport = { sim = "camera" }\n'
"""The simulator's scope camera at [devices.camera]'s defaults."""


def with_sim_camera(path: Path) -> Path:
    """A profile file like `path` with the simulator's camera added (the daemon reads its
    profile from a file), beside the runtime note; `path` itself if it has a camera."""
    if load_profile(path).devices.camera is not None:
        return path
    derived = runtime_dir() / f"{path.stem}-with-camera.toml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(path.read_text(encoding="utf-8") + SIM_CAMERA_SECTION)
    return derived


def _sim(args: argparse.Namespace) -> int:
    profile = _load(args.profile)
    if profile is None:
        return 1
    if args.camera:
        args.profile = with_sim_camera(args.profile)
        profile = _load(args.profile)
        if profile is None:
            return 1
    try:
        real_ports = _real_ports(args, profile)
    except PortResolutionError as exc:
        print(f"rig sim: {exc}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(run_sim(args.profile.resolve(), profile, real_ports))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"rig sim: {exc}", file=sys.stderr)
        return 1


def _resolve(name: str, section: DeviceSection, override: str | None) -> str:
    if override:
        return override
    spec = section.port
    if isinstance(spec, SimPort):
        raise PortResolutionError(
            f"devices.{name}.port = {{ sim = {spec.sim!r} }}: the simulator supplies this port; "
            f"start the rig with `rig sim`, or pass --{name}-port"
        )
    return section.real_port(list_serial_ports())


def _daemon(args: argparse.Namespace) -> int:
    profile = _load(args.profile)
    if profile is None:
        return 1
    try:
        ports = {
            name: _resolve(name, section, getattr(args, f"{name}_port"))
            for name, section in profile.devices.sections().items()
        }
    except PortResolutionError as exc:
        print(f"rig daemon: {exc}", file=sys.stderr)
        return 1
    host, port = profile.broker.host, profile.broker.port
    if args.broker:
        host, _, port_text = args.broker.rpartition(":")
        port = int(port_text)
    username, password = profile.broker.username, None
    camera_login: tuple[str, str | None] | None = None
    if args.credentials is not None:
        credentials = load_credentials(args.credentials)
        username, password = args.user, credentials[args.user]
        camera_login = args.camera_user, credentials[args.camera_user]
    else:
        if profile.broker.password_file is not None:
            password = profile.broker.password_file.read_text().strip()
        if profile.broker.camera_username is not None:
            camera_file = profile.broker.camera_password_file
            camera_login = (
                profile.broker.camera_username,
                None if camera_file is None else camera_file.read_text().strip(),
            )
    journal = args.journal or runtime_dir() / profile.rig_id / JOURNAL_FILE
    broker = BrokerAddress(host, port, username, password)
    scheduling = run_as_control_loop()  # before the daemon starts its threads
    daemon = RigDaemon(
        profile,
        ports,
        broker,
        camera_login=camera_login,
        journal_path=journal,
        loop_scheduling=scheduling,
    )
    # Everything imported and built so far lives as long as the daemon: out of the collector's
    # sight, so that a full collection scans only what the run allocates. Scanning it all (the
    # libraries, the profile, the registry) stopped the event loop 157-167 ms in CI, long enough
    # for the board's 250 ms watchdog to trip and for the loop-stall guard to stop the pump.
    gc.collect()
    gc.freeze()
    asyncio.run(daemon.run())
    return 0
