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
import random
import statistics
from pathlib import Path

from drivers.ne1000 import Ne1000Codec, Stop
from drivers.transport.mqtt import JsonObject
from drivers.transport.serial import wire_time_s
from rig.bench.session import BenchError, BenchSession, engineer_session, percentile
from rig.config import RigProfile
from rig.fluid.controller import SAMPLE_PERIOD_S
from rig.launcher import start_sim_rig

RESISTANCE_CAUSES = frozenset({"resistance_limit", "resistance_rise", "pressure_limit"})
FLOW_ML_MIN = 1.0
SETTLE_S = 1.2
AFTER_STOP_S = 0.3


def stop_wire_ms(profile: RigProfile) -> float:
    """The pump's safe-mode stop frame on the wire at its baud rate."""
    stop_bytes = Ne1000Codec(address=profile.devices.pump.address, safe_mode=True).encode(Stop())
    return wire_time_s(len(stop_bytes), profile.devices.pump.baudrate) * 1000.0


def stop_floor_ms(profile: RigProfile) -> float:
    return SAMPLE_PERIOD_S * 1000.0 + stop_wire_ms(profile)


async def stop_trial(
    session: BenchSession, rng: random.Random, flow_ml_min: float
) -> tuple[float, float, str]:
    """One trial: irrigate, the tip meets the wall, the stop read; (latency ms, bolus uL,
    cause). The line must be primed (BenchSession.ready); rig bench camera runs these too."""
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
        async with engineer_session(rig) as session:
            session.events = await session.mqtt.subscribe(session.topics.events)
            await session.ready()
            for index in range(trials):
                try:
                    latency_ms, bolus_ul, cause = await stop_trial(session, rng, flow_ml_min)
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
