"""`rig bench stop-latency`: how fast the rig stops the saline when the tip meets the wall.

Each trial: irrigate (1 mL/min unless asked otherwise) until the resistance estimate is steady, make the simulated tip
meet the duct wall (outflow resistance rises 12-fold over 100 ms), and read the stop event.

- latency: from the board timestamp of the first pressure sample over the limit to the moment
  the last byte of the pump's stop command has left the host at the configured baud rate. The
  board emulator stamps samples with the machine's CLOCK_MONOTONIC, the clock the host uses, so
  the two ends compare directly.
- floor: one sample period (the hazard cannot be seen sooner) plus the stop command's wire time.
- bolus: the volume the syringe pushed after that first sample (docs/simulator.md): it ends up
  in the duct whether it got there before the stop or drains from the line afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.ne1000 import Ne1000Codec, Stop
from drivers.sim.rig_sim import sim_command_topic
from drivers.transport.mqtt import JsonObject, MqttEndpoint
from drivers.transport.serial import wire_time_s
from rig.api.roles import Role
from rig.api.topics import RigTopics
from rig.config import RigProfile
from rig.fluid.controller import SAMPLE_PERIOD_S
from rig.launcher import start_sim_rig

RESISTANCE_CAUSES = frozenset({"resistance_limit", "resistance_rise", "pressure_limit"})
FLOW_ML_MIN = 1.0
SETTLE_S = 1.2
AFTER_STOP_S = 0.3


class BenchError(RuntimeError):
    """A trial that did not end in the stop it measures: what happened, and where the logs are."""


def stop_floor_ms(profile: RigProfile) -> float:
    stop_bytes = Ne1000Codec(address=profile.devices.pump.address, safe_mode=True).encode(Stop())
    return (SAMPLE_PERIOD_S + wire_time_s(len(stop_bytes), profile.devices.pump.baudrate)) * 1000.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a trial that happened)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class _Session:
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


async def _trial(
    session: _Session, rng: random.Random, flow_ml_min: float
) -> tuple[float, float, str]:
    await session.sim("clear")
    await session.command({"op": "fault.reset"})
    reply = await session.command({"op": "fluid.irrigate", "flow_ml_min": flow_ml_min})
    if not reply.get("ok"):
        raise BenchError(f"irrigate refused: {reply}")
    # Random phase against the sample clock and the pump polling, so the tails are honest.
    await asyncio.sleep(SETTLE_S + rng.uniform(0.0, 0.05))
    # The fault reset and the restart are stops of their own (operator, none); anything latched
    # while settling means the rig stopped before the wall came.
    early = [stop for stop in session.stops_so_far() if stop.get("latched")]
    if early:
        raise BenchError(f"stopped before the wall for {early[0]['cause']}: {early[0]['message']}")
    await session.sim("scenario", name="tip_against_wall")
    stop = await session.next_stop(timeout_s=5.0)
    if stop["cause"] not in RESISTANCE_CAUSES:
        raise BenchError(f"stopped for {stop['cause']}: {stop['message']}")
    await asyncio.sleep(AFTER_STOP_S)
    volumes = await session.sim("volume_since", t_s=stop["trigger_sample_t_us"] / 1e6)
    return (
        float(stop["detection_to_stop_ms"]),
        float(volumes["pumped_ml"]) * 1000.0,
        str(stop["cause"]),
    )


async def run_stop_latency(
    profile_path: Path,
    profile: RigProfile,
    trials: int,
    progress: bool = False,
    *,
    flow_ml_min: float = FLOW_ML_MIN,
) -> JsonObject:
    rig = await start_sim_rig(profile_path, profile)
    latencies: list[float] = []
    boluses: list[float] = []
    causes: dict[str, int] = {}
    rng = random.Random(profile.simulator.seed if profile.simulator else 0)
    try:
        username, password = rig.credentials_of(Role.ENGINEER)
        async with MqttEndpoint(
            rig.broker_host, rig.broker_port, username=username, password=password
        ) as mqtt:
            session = _Session(mqtt, profile.rig_id)
            session.events = await mqtt.subscribe(session.topics.events)
            await session.ready()
            for index in range(trials):
                try:
                    latency_ms, bolus_ul, cause = await _trial(session, rng, flow_ml_min)
                except BenchError as exc:
                    raise BenchError(
                        f"trial {index + 1} of {trials}: {exc} (logs in {rig.run_dir})"
                    ) from None
                latencies.append(latency_ms)
                boluses.append(bolus_ul)
                causes[cause] = causes.get(cause, 0) + 1
                if progress:
                    print(
                        f"trial {index + 1}/{trials}: {latency_ms:.2f} ms, {bolus_ul:.2f} uL ({cause})",
                        flush=True,
                    )
    finally:
        await rig.stop()
    floor_ms = stop_floor_ms(profile)
    p99 = percentile(latencies, 99)
    return {
        "benchmark": "stop-latency",
        "trials": trials,
        "flow_ml_min": flow_ml_min,
        "scenario": "tip_against_wall",
        "pump_baudrate": profile.devices.pump.baudrate,
        "p50_ms": round(percentile(latencies, 50), 3),
        "p90_ms": round(percentile(latencies, 90), 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(max(latencies), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "floor_ms": round(floor_ms, 3),
        "p99_over_floor": round(p99 / floor_ms, 3),
        "bolus_ul_p50": round(percentile(boluses, 50), 3),
        "bolus_ul_p99": round(percentile(boluses, 99), 3),
        "bolus_ul_max": round(max(boluses), 3),
        # The acceptance figure: ECRI's post-release bolus limit, from the profile.
        "bolus_limit_ul": profile.limits.post_release_bolus_max_ul,
        "bolus_within_limit": max(boluses) <= profile.limits.post_release_bolus_max_ul,
        "causes": causes,
    }
