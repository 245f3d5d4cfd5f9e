"""What the benchmarks on the simulated rig share: a session on its broker, as the engineer,
with the simulator's control topic; the nearest-rank percentile; the benchmark's error."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from drivers.sim.rig_sim import sim_command_topic
from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.api.roles import Role
from rig.api.topics import RigTopics
from rig.launcher import SimRig


class BenchError(RuntimeError):
    """A trial that did not end in the stop it measures: what happened, and where the logs are."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a trial that happened)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def percentile_figure(values: list[float], q: float, digits: int) -> float | None:
    """`percentile` rounded for a report, None when nothing was measured."""
    return round(percentile(values, q), digits) if values else None


class BenchSession:
    def __init__(self, mqtt: MqttEndpoint, rig_id: str) -> None:
        self.mqtt = mqtt
        self.topics = RigTopics(rig_id)
        self.commands = self.topics.commands_for(Role.ENGINEER)
        self.sim_topic = sim_command_topic(rig_id)
        self.events: asyncio.Queue[Any] | None = None

    async def command(self, command: JsonObject) -> JsonObject:
        return await self.mqtt.request(self.commands, command)

    async def sim(self, op: str, **fields: Any) -> JsonObject:
        reply = await self.mqtt.request(self.sim_topic, {"op": op, **fields})
        if not reply.get("ok"):
            raise BenchError(f"simulator refused {op}: {reply}")
        result: JsonObject = reply["result"]
        return result

    async def ready(self, timeout_s: float = 20.0) -> None:
        """Wait for the self-test to pass, then prime the line once for all trials."""
        async with asyncio.timeout(timeout_s):
            await self.until(lambda state: state["state"] == "ready")
            reply = await self.command({"op": "fluid.prime"})
            if not reply.get("ok"):
                raise BenchError(f"prime refused: {reply}")
            await self.until(lambda state: state["primed"] and state["mode"] == "stopped")

    async def until(self, predicate: Callable[[JsonObject], bool]) -> JsonObject:
        while True:
            state = await self.status()
            if predicate(state):
                return state
            await asyncio.sleep(0.1)

    async def status(self) -> JsonObject:
        try:
            reply = await self.command({"op": "status"})
        except TimeoutError:
            return {"state": None, "primed": False, "mode": None}
        result: JsonObject = reply["result"]
        return result

    async def next_stop(self, timeout_s: float) -> JsonObject:
        assert self.events is not None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    event: JsonObject = json.loads((await self.events.get()).payload)
                    if event.get("kind") == "stop":
                        return event
        except TimeoutError:
            raise BenchError(f"no stop within {timeout_s:g} s of the wall") from None

    def stops_so_far(self) -> list[JsonObject]:
        """The stop events queued until now (the rest are dropped): a trial starts clean."""
        assert self.events is not None
        stops = []
        while not self.events.empty():
            event: JsonObject = json.loads(self.events.get_nowait().payload)
            if event.get("kind") == "stop":
                stops.append(event)
        return stops


@contextlib.asynccontextmanager
async def engineer_session(rig: SimRig) -> AsyncIterator[BenchSession]:
    """A session on `rig`'s broker, logged in as the engineer."""
    username, password = rig.credentials_of(Role.ENGINEER)
    async with MqttEndpoint(
        rig.broker_host, rig.broker_port, username=username, password=password
    ) as mqtt:
        yield BenchSession(mqtt, rig.profile.rig_id)


def machine_load() -> JsonObject:
    """The machine's load at the end of a run, for figures that mean little without it (other
    sessions may share the machine): `load_1min` and `cpu_pressure_some_avg10` (PSI)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        pressure: float | None = float(dict(f.split("=") for f in line.split()[1:])["avg10"])
    except (OSError, IndexError, KeyError, ValueError):
        pressure = None
    return {"load_1min": round(os.getloadavg()[0], 2), "cpu_pressure_some_avg10": pressure}
