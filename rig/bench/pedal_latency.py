"""`rig bench pedal`: how fast letting go of the irrigate pedal stops the saline, and letting go of
the basket pedal halts the basket.

The real daemon on the simulator (`rig sim`'s processes: the emulators, Mosquitto, the daemon),
with the emulated VEC pedal on the simulator's USB bus. Each trial: press the irrigate pedal,
wait until the emulated pump runs, hold a random 20-80 ms more (random phase against the
pedal's reads and the pump's polls), let go.

- latency: from the moment the pedal's release report is queued on its interrupt endpoint to
  the arrival, at the emulated pump, of the last bit of the command that stopped it (the pty
  paces bytes at the line's baud rate). Both are stamped in the simulator's process on
  CLOCK_MONOTONIC. On the way: the daemon's interrupt read (pyusb, through the bus's socket),
  the pedal tracker (no release debounce), the one dispatcher (role surgeon, client `pedal`),
  the interlock's trip, the stop frame on the wire.
- the basket: with the basket open, the basket pedal is pressed (the basket closes), held a
  random 20-80 ms more once the emulated stage moves, and let go; from its release report to the
  arrival at the emulated Tic of the halt-and-hold request (one control transfer on the
  simulator's bus), both on CLOCK_MONOTONIC. On the way: the pedal's read, the tracker, the
  dispatcher (basket.halt, as the surgeon), the interlock's halt, pyusb through the bus's socket.
  The basket is opened again between trials (from where it halted).
- floor: the stop frame's wire time at the pump's baud rate (the USB report's own transfer is
  under a millisecond at full speed); `p99_over_floor` is what the software adds, as a ratio.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from pathlib import Path

from drivers.transport.mqtt import JsonObject
from rig.bench.session import BenchError, BenchSession, engineer_session, percentile
from rig.bench.stop_latency import stop_wire_ms
from rig.config import RigProfile
from rig.devices.pedal_config import PedalAction
from rig.launcher import start_sim_rig

RUNNING_TIMEOUT_S = 3.0
STOPPED_TIMEOUT_S = 2.0
POLL_S = 0.005
BASKET_MOVE_TIMEOUT_S = 10.0


async def _sim_pump(session: BenchSession) -> JsonObject:
    state = await session.sim("state")
    pump: JsonObject = state["pump"]
    return pump


async def _until_pump(
    session: BenchSession, running: bool, timeout_s: float, what: str
) -> JsonObject:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                pump = await _sim_pump(session)
                if bool(pump["running"]) is running:
                    return pump
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        status = await session.status()
        raise BenchError(f"{what} within {timeout_s:g} s (rig: {status})") from None


async def _trial(session: BenchSession, rng: random.Random, pedal: str) -> float:
    await session.sim("pedal", action="press", pedal=pedal)
    await _until_pump(session, True, RUNNING_TIMEOUT_S, "the pump did not run")
    await asyncio.sleep(rng.uniform(0.02, 0.08))
    released = await session.sim("pedal", action="release", pedal=pedal)
    report_at_s = float(released["report_at_s"])
    pump = await _until_pump(session, False, STOPPED_TIMEOUT_S, "the pump did not stop")
    stop_at_s = pump["stop_command_at_s"]
    if stop_at_s is None or float(stop_at_s) < report_at_s:
        raise BenchError(f"the pump stopped before the release ({stop_at_s} < {report_at_s})")
    return (float(stop_at_s) - report_at_s) * 1000.0


async def _sim_basket(session: BenchSession) -> JsonObject:
    basket: JsonObject = (await session.sim("state"))["basket"]
    return basket


async def _basket_state(session: BenchSession, state: str, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if ((await session.status()).get("basket") or {}).get("state") == state:
                    return
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise BenchError(f"the basket not {state} within {timeout_s:g} s") from None


async def _basket_trial(session: BenchSession, rng: random.Random, pedal: str) -> float:
    reply = await session.command({"op": "basket.open"})
    if not reply.get("ok"):
        raise BenchError(f"basket.open refused: {reply.get('error')}")
    await _basket_state(session, "open", BASKET_MOVE_TIMEOUT_S)
    await session.sim("pedal", action="press", pedal=pedal)
    try:
        async with asyncio.timeout(RUNNING_TIMEOUT_S):
            while True:
                if (await _sim_basket(session))["velocity_usteps_s"]:
                    break
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise BenchError("the basket did not close when its pedal was pressed") from None
    await asyncio.sleep(rng.uniform(0.02, 0.08))
    released = await session.sim("pedal", action="release", pedal=pedal)
    report_at_s = float(released["report_at_s"])
    try:
        async with asyncio.timeout(STOPPED_TIMEOUT_S):
            while True:
                halt_at_s = (await _sim_basket(session))["halt_request_at_s"]
                if halt_at_s is not None and float(halt_at_s) >= report_at_s:
                    return (float(halt_at_s) - report_at_s) * 1000.0
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise BenchError("no halt reached the basket's Tic after the pedal's release") from None


def _pedal_for(profile: RigProfile, wanted: PedalAction) -> str | None:
    pedal = profile.devices.pedal
    if pedal is None:
        raise BenchError("the profile has no [devices.pedal]")
    for name, action in pedal.actions.items():
        if action is wanted:
            return name.value
    return None


def _irrigate_pedal(profile: RigProfile) -> str:
    pedal = _pedal_for(profile, PedalAction.IRRIGATE)
    if pedal is None:
        raise BenchError("no pedal of devices.pedal.actions is `irrigate`")
    return pedal


def _figures(latencies: list[float], prefix: str = "") -> JsonObject:
    return {
        f"{prefix}p50_ms": round(percentile(latencies, 50), 3),
        f"{prefix}p90_ms": round(percentile(latencies, 90), 3),
        f"{prefix}p99_ms": round(percentile(latencies, 99), 3),
        f"{prefix}max_ms": round(max(latencies), 3),
        f"{prefix}mean_ms": round(statistics.fmean(latencies), 3),
    }


async def run_pedal_latency(
    profile_path: Path, profile: RigProfile, trials: int, progress: bool = False
) -> JsonObject:
    pedal = _irrigate_pedal(profile)
    basket_pedal = _pedal_for(profile, PedalAction.BASKET)
    if profile.devices.basket is None:
        basket_pedal = None  # a rig without a basket: the pump's figures only
    rig = await start_sim_rig(profile_path, profile)
    latencies: list[float] = []
    basket_latencies: list[float] = []
    rng = random.Random(profile.simulator.seed if profile.simulator else 0)
    try:
        async with engineer_session(rig) as session:
            await session.ready()
            for index in range(trials):
                try:
                    latencies.append(await _trial(session, rng, pedal))
                except BenchError as exc:
                    raise BenchError(
                        f"trial {index + 1} of {trials}: {exc} (logs in {rig.run_dir})"
                    ) from None
                if progress and (index + 1) % 50 == 0:
                    print(f"trial {index + 1}/{trials}: {latencies[-1]:.2f} ms", flush=True)
            if basket_pedal is not None:
                await _basket_state(session, "retracted", BASKET_MOVE_TIMEOUT_S)
                for index in range(trials):
                    try:
                        basket_latencies.append(await _basket_trial(session, rng, basket_pedal))
                    except BenchError as exc:
                        raise BenchError(
                            f"basket trial {index + 1} of {trials}: {exc} (logs in {rig.run_dir})"
                        ) from None
                    if progress and (index + 1) % 50 == 0:
                        print(
                            f"basket trial {index + 1}/{trials}: {basket_latencies[-1]:.2f} ms",
                            flush=True,
                        )
    finally:
        await rig.stop()
    floor_ms = stop_wire_ms(profile)
    p99 = percentile(latencies, 99)
    return {
        "benchmark": "pedal",
        "trials": trials,
        "measured": "pedal release report queued -> the pump's stop command at the pump",
        **_figures(latencies),
        "floor_ms": round(floor_ms, 3),
        "p99_over_floor": round(p99 / floor_ms, 3),
        "pump_baudrate": profile.devices.pump.baudrate,
        **(
            {
                "basket_trials": len(basket_latencies),
                "basket_measured": "basket pedal release report queued -> halt request at the Tic",
                **_figures(basket_latencies, "basket_"),
            }
            if basket_latencies
            else {}
        ),
    }
