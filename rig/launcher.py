"""`rig sim`: the whole rig on the simulator, in three processes plus a broker.

- a private Mosquitto on a free loopback port (when the profile asks for one),
- the simulator (`python -m drivers.sim`): physics and device emulators on pseudo-terminals,
- the daemon (`rig daemon`), which opens those terminals exactly as it would open real ports.

They are separate processes so that each can be killed on its own: a SIGKILLed daemon leaves the
emulated pump and board running, and their own timeouts must stop the saline. Shutdown goes in
the safe order: the daemon first (it stops the pump), then the simulator, then the broker. A
launcher that is killed outright takes them with it (rig/children.py): each gets SIGTERM, its
own orderly shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiomqtt import MqttError

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.api.roles import (
    Role,
    ServiceUser,
    broker_acl,
    load_credentials,
    new_credentials,
    save_credentials,
)
from rig.api.topics import RigTopics
from rig.broker import PrivateBroker
from rig.children import die_with_this_process
from rig.config import RigProfile, SimPort
from rig.devices.section import DeviceSection
from rig.events.journal import JOURNAL_FILE
from rig.runtime import RunningRig, pid_alive

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0
KEEP_RUN_DIRS = 5
"""Run directories `rig sim` keeps (the newest, this run's included): enough to compare this run's
logs with the last few after a failure, while a week of bench work cannot fill /tmp (each holds
at most about 50 MiB of rotated daemon log plus the simulator's)."""
LAUNCHER_PID_FILE = "launcher.pid"


@dataclass
class SimRig:
    """A running simulated rig; `stop()` takes it down in order."""

    profile_path: Path
    profile: RigProfile
    run_dir: Path
    broker_host: str
    broker_port: int
    broker: PrivateBroker | None
    credentials_file: Path | None
    """user -> password for the private broker (mode 0600), or None for an open broker."""
    simulator: asyncio.subprocess.Process
    daemon: asyncio.subprocess.Process | None
    real_ports: Mapping[str, str] = field(default_factory=dict)
    """Devices that are real on this bench (name -> port); the others are the simulator's."""

    @property
    def link_dir(self) -> Path:
        return self.run_dir / "dev"  # RunningRig.link_dir: the same place, found from the note

    def device_port(self, name: str) -> str:
        """The port the daemon opens for `name`: the real device's, else the simulator's (its
        pseudo-terminal, or its USB bus)."""
        if name in self.real_ports:
            return self.real_ports[name]
        return simulated_port(name, self.profile.devices.sections()[name], self.link_dir)

    async def start_daemon(self) -> asyncio.subprocess.Process:
        """(Re)start the daemon process, e.g. after a test killed it."""
        self.daemon = await _spawn(
            [
                sys.executable,
                "-m",
                "rig.cli.main",
                "--log-file",
                str(self.run_dir / "daemon.log"),
                "daemon",
                "--profile",
                str(self.profile_path),
                *(
                    arg
                    for name in self.profile.devices.sections()
                    for arg in (f"--{name}-port", self.device_port(name))
                ),
                "--broker",
                f"{self.broker_host}:{self.broker_port}",
                "--journal",
                str(self.run_dir / JOURNAL_FILE),
                *self._login(ServiceUser.DAEMON),
            ],
            # What escapes logging (a crash's traceback) lands here; the log itself rotates.
            self.run_dir / "daemon.out",
        )
        return self.daemon

    def credentials_of(self, user: str) -> tuple[str | None, str | None]:
        """(user name, password) for a client of this rig's broker; (None, None) if it is open."""
        if self.credentials_file is None:
            return None, None
        return user, load_credentials(self.credentials_file)[user]

    def _login(self, user: str) -> list[str]:
        if self.credentials_file is None:
            return []
        return ["--credentials", str(self.credentials_file), "--user", user]

    async def stop(self) -> None:
        for process in (self.daemon, self.simulator):
            if process is not None:
                await _terminate(process)
        if self.broker is not None:
            await self.broker.stop()


def simulated_port(name: str, section: DeviceSection, link_dir: Path) -> str:
    """The port the daemon opens for a device no real port was given for: the simulator's
    (its pty, or its USB bus), or one that needs nothing attached here (a console's)."""
    if isinstance(section.port, SimPort):
        return section.sim_port(name, link_dir)
    return section.real_port([])


def sim_camera_args(profile: RigProfile) -> list[str]:
    """The simulator's `--camera WIDTHxHEIGHT@FPS`, when the profile's camera is the
    simulator's (not imported from drivers.sim.camera: that would load OpenCV into every `rig`
    command)."""
    camera = profile.devices.camera
    if camera is None or not isinstance(camera.port, SimPort):
        return []
    return ["--camera", f"{camera.width}x{camera.height}@{camera.fps:g}"]


def sim_baudrates(profile: RigProfile) -> dict[str, int]:
    """The line rate of each serial device in the profile, for its emulator."""
    return {
        name: baud
        for name, section in profile.devices.sections().items()
        if (baud := section.sim_baudrate()) is not None
    }


async def start_sim_rig(
    profile_path: Path,
    profile: RigProfile,
    *,
    run_dir: Path | None = None,
    with_daemon: bool = True,
    real_ports: Mapping[str, str] | None = None,
) -> SimRig:
    """Start the rig on the simulator; the devices in `real_ports` (name -> port) are real ones
    instead (a hybrid bench: the real pump with the simulated board, say)."""
    if profile.simulator is None:
        raise ValueError(
            f"{profile_path}: has no [simulator] section; `rig sim` needs a simulator profile"
        )
    if run_dir is None:
        prefix = f"rig-{profile.rig_id}-"
        run_dir = Path(tempfile.mkdtemp(prefix=prefix))
        (run_dir / LAUNCHER_PID_FILE).write_text(f"{os.getpid()}\n")
        prune_run_dirs(run_dir.parent, prefix, KEEP_RUN_DIRS)
    broker = None
    credentials_file = None
    host, port = profile.broker.host, profile.broker.port
    if profile.broker.private:
        credentials = new_credentials()
        credentials_file = run_dir / "credentials.json"
        save_credentials(credentials_file, credentials)
        broker = PrivateBroker(run_dir / "broker", credentials=credentials, acl=broker_acl())
        await broker.start()
        host, port = broker.host, broker.port
    link_dir = run_dir / "dev"
    link_dir.mkdir(parents=True, exist_ok=True)
    sim_cfg = profile.simulator
    simulator = await _spawn(
        [
            sys.executable,
            "-m",
            "drivers.sim",
            "--link-dir",
            str(link_dir),
            "--broker",
            f"{host}:{port}",
            "--rig-id",
            profile.rig_id,
            *(
                arg
                for name, baud in sim_baudrates(profile).items()
                for arg in ("--baudrate", f"{name}={baud}")
            ),
            "--syringe-diameter-mm",
            str(profile.syringe.inner_diameter_mm),
            "--pressure-noise-mmhg",
            str(sim_cfg.pressure_noise_mmhg),
            "--seed",
            str(sim_cfg.seed),
            *sim_camera_args(profile),
            *(
                []
                if credentials_file is None
                else ["--credentials", str(credentials_file), "--user", ServiceUser.SIMULATOR]
            ),
        ],
        run_dir / "sim.log",
    )
    rig = SimRig(
        profile_path,
        profile,
        run_dir,
        host,
        port,
        broker,
        credentials_file,
        simulator,
        None,
        dict(real_ports or {}),
    )
    try:
        await _wait_for(link_dir / "ready", simulator, run_dir / "sim.log")
        if with_daemon:
            await rig.start_daemon()
    except BaseException:
        await rig.stop()
        raise
    return rig


def prune_run_dirs(parent: Path, prefix: str, keep: int) -> list[Path]:
    """Remove all but the `keep` newest run directories `parent/prefix*` whose launcher (named in
    their LAUNCHER_PID_FILE) has exited. A directory without that file is left alone: whoever
    made it (an older version, another tool sharing /tmp) may still be using it. Returns the
    directories removed."""
    candidates = sorted(
        (path for path in parent.glob(f"{prefix}*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    removed = []
    for path in candidates[keep:]:
        if _launcher_alive(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _launcher_alive(run_dir: Path) -> bool:
    try:
        pid = int((run_dir / LAUNCHER_PID_FILE).read_text())
    except (OSError, ValueError):
        return True  # no launcher named: not provably ours to remove
    return pid_alive(pid)


async def run_sim(
    profile_path: Path, profile: RigProfile, real_ports: Mapping[str, str] | None = None
) -> int:
    """The `rig sim` command: start everything, say how to use it, run until Ctrl-C."""
    rig = await start_sim_rig(profile_path, profile, real_ports=real_ports)
    running = RunningRig(
        profile.rig_id,
        rig.broker_host,
        rig.broker_port,
        str(rig.run_dir),
        os.getpid(),
        None if rig.credentials_file is None else str(rig.credentials_file),
        str(profile_path),
    )
    running.save()
    lines = [
        f"rig {profile.rig_id} running on the simulator",
        f"  broker   {rig.broker_host}:{rig.broker_port}",
        *_device_lines(rig),
        f"  logs     {rig.run_dir}",
        "In another terminal:  rig status  |  rig fluid prime  |  "
        "rig fluid irrigate --flow-ml-min 1.0  |  rig watch",
        "Ctrl-C stops the rig (pump first). The rig's states follow here; fluid waits for ready.",
    ]
    print("\n".join(lines), flush=True)
    follower = asyncio.create_task(_print_state_changes(rig))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    exit_code = 0
    try:
        while not stop.is_set():
            for name, process in (("daemon", rig.daemon), ("simulator", rig.simulator)):
                if process is not None and process.returncode is not None:
                    print(
                        f"{name} exited with {process.returncode}; see {rig.run_dir}",
                        file=sys.stderr,
                    )
                    exit_code = 1
                    stop.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await stop.wait()
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await rig.stop()
        RunningRig.clear(os.getpid())
    return exit_code


def _device_lines(rig: SimRig) -> list[str]:
    """Where each device is; a real one next to a simulated board gets the warning it needs."""
    lines = []
    sections = rig.profile.devices.sections()
    for name in sections:
        kind = "REAL" if name in rig.real_ports else "simulated"
        lines.append(f"  {name:<8} {rig.device_port(name)}  ({kind})")
    for name, section in sections.items():
        warning = section.hybrid_warning(name, frozenset(rig.real_ports))
        if warning is not None:
            lines.append(f"  warning  {warning}")
    return lines


def _describe_state(state: JsonObject) -> str:
    """One line for a state change: the state, and the fault's cause and message if latched."""
    if not state.get("online"):
        return "daemon offline"
    line = str(state.get("state"))
    fault = state.get("fault")
    if fault is not None:
        line += f": {fault.get('cause')}: {fault.get('message')} (reset with `rig fault reset`)"
    return line


async def _print_state_changes(rig: SimRig) -> None:
    """Follow the retained state as an observer and print each change, so that whoever started
    `rig sim` sees the self-test end (and any fault) without polling `rig status`."""
    username, password = rig.credentials_of(Role.OBSERVER)
    topic = RigTopics(rig.profile.rig_id).state
    last = ""
    while True:
        try:
            async with MqttEndpoint(
                rig.broker_host, rig.broker_port, username=username, password=password
            ) as mqtt:
                states = await mqtt.subscribe(topic)
                while True:
                    message = await states.get()
                    line = _describe_state(json.loads(message.payload or b"{}"))
                    if line != last:
                        last = line
                        print(f"{time.strftime('%H:%M:%S')}  rig {line}", flush=True)
        except (MqttError, OSError, ValueError) as exc:
            # The broker is ours and outlives this task; a lost connection is retried quietly.
            log.debug("state follower: %s", exc)
            await asyncio.sleep(1.0)


async def _spawn(argv: list[str], log_path: Path) -> asyncio.subprocess.Process:
    log_file = log_path.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
            start_new_session=True,
            preexec_fn=die_with_this_process(),
        )
    finally:
        log_file.close()


async def _wait_for(path: Path, process: asyncio.subprocess.Process, log_path: Path) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while not path.exists():  # noqa: ASYNC240 - a stat of a local file, polled
            if process.returncode is not None:
                tail = log_path.read_text()[-2000:]  # noqa: ASYNC240 - error path
                raise RuntimeError(f"simulator exited with {process.returncode}:\n{tail}")
            await asyncio.sleep(0.05)


async def _terminate(process: asyncio.subprocess.Process, timeout_s: float = 5.0) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
