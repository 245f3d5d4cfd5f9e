"""A running simulated rig for system tests: real Mosquitto, simulator and daemon processes.

Tests talk to it the way users do, over MQTT, and observe the simulator's ground truth (the
emulated pump's motor, the board's relay, the duct's pressure) through the simulator's own
control topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from drivers.sim.rig_sim import sim_command_topic
from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.api.roles import Role
from rig.api.topics import RigTopics
from rig.config import DEFAULT_PROFILE, load_profile
from rig.launcher import SimRig, start_sim_rig


class RigUnderTest:
    def __init__(self, rig: SimRig, mqtt: MqttEndpoint, role: Role = Role.ENGINEER) -> None:
        self.rig = rig
        self.mqtt = mqtt
        self.topics = RigTopics(rig.profile.rig_id)
        self.commands = self.topics.commands_for(role)
        self._sim_topic = sim_command_topic(rig.profile.rig_id)
        self.events: asyncio.Queue[Any] | None = None

    async def start(self) -> None:
        self.events = await self.mqtt.subscribe(self.topics.events)

    async def command(self, command: JsonObject | bytes, timeout_s: float = 3.0) -> JsonObject:
        return await self.mqtt.request(self.commands, command, timeout_s=timeout_s)

    async def sim(self, op: str, **fields: Any) -> Any:
        reply = await self.mqtt.request(self._sim_topic, {"op": op, **fields})
        assert reply["ok"], reply
        return reply["result"]

    async def status(self) -> JsonObject:
        reply = await self.command({"op": "status"})
        assert reply["ok"], reply
        result: JsonObject = reply["result"]
        return result

    async def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Devices connected, self-test passed: the rig may move fluid."""
        await self.wait_until(lambda s: s["state"] == "ready", timeout_s)

    async def prime(self) -> None:
        reply = await self.command({"op": "fluid.prime"})
        assert reply["ok"], reply
        await self.wait_until(lambda s: s["primed"] and s["mode"] == "stopped", 10.0)

    async def wait_until(
        self, predicate: Callable[[JsonObject], bool], timeout_s: float
    ) -> JsonObject:
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    state = await self.status()
                    if predicate(state):
                        return state
                except TimeoutError:
                    pass
                await asyncio.sleep(0.05)

    async def wait_sim(
        self, predicate: Callable[[JsonObject], bool], timeout_s: float
    ) -> JsonObject:
        async with asyncio.timeout(timeout_s):
            while True:
                state: JsonObject = await self.sim("state")
                if predicate(state):
                    return state
                await asyncio.sleep(0.01)

    async def next_event(
        self, predicate: Callable[[JsonObject], bool], timeout_s: float = 5.0
    ) -> JsonObject:
        assert self.events is not None
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self.events.get()
                event: JsonObject = json.loads(message.payload)
                if predicate(event):
                    return event

    async def irrigate_steadily(self, flow_ml_min: float = 1.0, settle_s: float = 1.2) -> None:
        if not (await self.status())["primed"]:
            await self.prime()
        reply = await self.command({"op": "fluid.irrigate", "flow_ml_min": flow_ml_min})
        assert reply["ok"], reply
        await self.wait_sim(lambda s: s["pump"]["running"], 3.0)
        await asyncio.sleep(settle_s)
        self.drain_events()

    def drain_events(self) -> None:
        """Forget events so far (the prime's completion, say): tests wait for what comes next."""
        assert self.events is not None
        while not self.events.empty():
            self.events.get_nowait()

    def endpoint(self, user: str) -> MqttEndpoint:
        """Another client of the rig's broker, logged in as `user`."""
        username, password = self.rig.credentials_of(user)
        return MqttEndpoint(
            self.rig.broker_host, self.rig.broker_port, username=username, password=password
        )

    def kill_daemon(self, signum: int = signal.SIGKILL) -> None:
        assert self.rig.daemon is not None
        os.kill(self.rig.daemon.pid, signum)


SIM_CAMERA_SECTION = """
[devices.camera]
port = { sim = "camera" }
width = 320
height = 240
fps = 15
"""


@contextlib.asynccontextmanager
async def running_rig(
    run_dir: Path,
    *,
    before_daemon: Callable[[RigUnderTest], Awaitable[None]] | None = None,
    profile_path: Path = DEFAULT_PROFILE,
) -> AsyncIterator[RigUnderTest]:
    """The simulated rig as `rig sim` starts it (on `profile_path`), with a client logged in
    as an engineer.

    `before_daemon` runs once the simulator is up and before the daemon starts (to inject a
    fault the daemon must find at start). On the way out, the logs' tails are printed: pytest
    shows them for a failing test.
    """
    profile = load_profile(profile_path)
    sim_rig = await start_sim_rig(
        profile_path, profile, run_dir=run_dir, with_daemon=before_daemon is None
    )
    try:
        username, password = sim_rig.credentials_of(Role.ENGINEER)
        async with MqttEndpoint(
            sim_rig.broker_host, sim_rig.broker_port, username=username, password=password
        ) as mqtt:
            under_test = RigUnderTest(sim_rig, mqtt)
            await under_test.start()
            if before_daemon is not None:
                await before_daemon(under_test)
                await sim_rig.start_daemon()
            yield under_test
    finally:
        strangers = _strangers_on_ports(sim_rig)
        await sim_rig.stop()
        if strangers:
            print("--- other processes holding this rig's ports ---\n" + "\n".join(strangers))
        for log_name in ("daemon.out", "daemon.log", "sim.log"):
            log_path = run_dir / log_name
            if log_path.exists():
                print(f"--- {log_name} (tail) ---\n{log_path.read_text()[-3000:]}")


def _strangers_on_ports(sim_rig: SimRig) -> list[str]:
    """Processes other than the rig's own that have one of its pseudo-terminals open: a device
    that stops answering in a parallel run is one someone else is reading (pytest shows this
    for a failing test)."""
    ports: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for link in sim_rig.link_dir.iterdir():
            target = os.path.realpath(link)
            if target.startswith("/dev/pts/"):
                ports[target] = link.name
    own = {os.getpid(), sim_rig.simulator.pid}
    if sim_rig.daemon is not None:
        own.add(sim_rig.daemon.pid)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) in own:
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target in ports:
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{ports[target]} ({target}): pid {pid}: {command[:200]}")
    return found


@contextlib.asynccontextmanager
async def ready_rig_with_camera(directory: Path) -> AsyncIterator[RigUnderTest]:
    """The simulated rig on config/sim.toml with the simulated scope camera (off there: a
    camera process per rig start), self-tested and ready; its run directory is
    `directory / "run"`."""
    profile = directory / "sim-camera.toml"
    profile.write_text(DEFAULT_PROFILE.read_text() + SIM_CAMERA_SECTION)
    async with running_rig(directory / "run", profile_path=profile) as rig:
        await rig.wait_ready()
        # Nothing flows into the duct before the scope's first frames (H19).
        await rig.wait_until(lambda s: bool((s.get("camera") or {}).get("live")), 20.0)
        yield rig
