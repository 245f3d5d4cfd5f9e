"""`rig bench board-stop`: the I/O board's own resistance stop, against the host's.

On the stepped simulator (rig.bench.stepped_rig: the board's firmware, the pump emulator and the
line's physics, the host's controller and interlock, faster than real time), each trial is one
irrigation at a flow of the range where the resistance stop is the board's first control, and a
wall (`tip_against_wall`: the tip's resistance 12-fold over 100 ms) after a settle with a random
phase. The trial runs twice from the same seed:

- with the host's fluid loop blind (it sees no sample and does not actuate, its heartbeat runs:
  rig.bench.stepped_rig.SteppedRig.blind_host), so that only the board can stop the pump: the
  board's latency is from the trigger sample (the first of the run over its limit) to the relay
  opening, both on the board's clock as its RESISTANCE_TRIP report gives them;
- with the host live: the host's stop, from its trigger sample to the last byte of the pump's
  stop command on the wire (StopEvent.detection_to_stop_ms), for comparison.

`false_stops`: the envelope benchmark's healthy grid (rig.bench.envelope.run_healthy: every
flow, restarts, flow changes, pressure mode and its mode changes, boluses, prime) with the board's
stop armed, shortened; any stop but the operator's or a completion counts, the board's among
them (`false_board_stops`).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from drivers.sim.scenarios import make_scenario
from rig.bench.envelope import EnvelopeGrid, EnvelopeResult, log_spaced, run_healthy
from rig.bench.session import BenchError, percentile
from rig.bench.stepped_rig import SteppedRig
from rig.config import RigProfile
from rig.fluid.events import StopCause, StopEvent

SETTLE_S = 1.0
"""Irrigation before the wall: the line has filled (3 time constants) at every trial flow."""
PHASE_S = 0.05
"""The wall comes up to this much later in each trial: another phase of noise and samples."""
DETECT_TIMEOUT_S = 10.0
HOST_CAUSES = frozenset(
    {StopCause.RESISTANCE_LIMIT, StopCause.RESISTANCE_RISE, StopCause.PRESSURE_LIMIT}
)
TRIAL_FLOWS = 5
"""Log-spaced flows from the profile's minimum to the top of the board's resistance range."""
GRID_FLOWS = 5
GRID_STEADY_S = 10.0
GRID_RESTART_RUN_S = 3.0
"""The healthy grid, shortened from the envelope benchmark's (60 s steady, 6 s after each
restart) to keep the benchmark near a minute; `rig bench envelope` runs the long one."""


def trial_flows(profile: RigProfile) -> tuple[float, ...]:
    """Flows at which a wall reaches the board's resistance limit before its pressure cut-off
    (limit x flow below the cut-off, with a fifth to spare); above them the cut-off is the
    board's stop for a wall, and that is not this benchmark's."""
    limits = profile.limits
    limit = profile.devices.board.resistance_stop_mmhg_min_per_ml
    top = min(limits.max_flow_ml_min, 0.8 * limits.board_cutoff_mmhg / limit)
    return log_spaced(limits.min_flow_for_resistance_ml_min, top, TRIAL_FLOWS)


async def _wall(rig: SteppedRig, flow: float, settle_s: float, done: Callable[[], bool]) -> None:
    rig.controller.irrigate(flow)
    await rig.run_for(settle_s)
    if rig.stops:
        raise BenchError(f"stopped before the wall for {rig.stops[0].cause}")
    rig.start_scenario(make_scenario("tip_against_wall"))
    await rig.run_until(done, DETECT_TIMEOUT_S)


async def board_trial(profile: RigProfile, flow: float, settle_s: float, seed: int) -> float:
    """The host blind from the wall on: the board's trigger-to-relay time, in ms."""
    rig = SteppedRig(profile, seed=seed)
    rig.controller.irrigate(flow)
    await rig.run_for(settle_s)
    rig.blind_host()
    await _wall(rig, flow, 0.0, lambda: bool(rig.resistance_trips))
    if not rig.resistance_trips:
        raise BenchError(f"the board did not stop a wall at {flow:g} mL/min")
    rig.restore_host()
    if rig.interlock.latched is None or rig.interlock.latched.cause is not (
        StopCause.BOARD_RESISTANCE_STOP
    ):
        raise BenchError(f"the host did not latch the board's stop: {rig.interlock.latched}")
    return rig.resistance_trips[0].latency_ms


async def host_trial(profile: RigProfile, flow: float, settle_s: float, seed: int) -> float:
    """The same trial with the host live: its trigger-to-stop-on-the-wire time, in ms."""
    rig = SteppedRig(profile, seed=seed)

    def host_stop() -> StopEvent | None:
        return next((e for e in rig.stops if e.cause in HOST_CAUSES), None)

    await _wall(rig, flow, settle_s, lambda: host_stop() is not None or bool(rig.resistance_trips))
    event = host_stop()
    if event is None or event.detection_to_stop_ms is None:
        raise BenchError(f"the host did not stop a wall at {flow:g} mL/min: {rig.stops}")
    return event.detection_to_stop_ms


def healthy_grid(profile: RigProfile, flows: int = GRID_FLOWS) -> EnvelopeGrid:
    """The envelope benchmark's healthy grid, shortened."""
    return replace(
        EnvelopeGrid.for_profile(profile, flows=flows),
        steady_s=GRID_STEADY_S,
        restart_run_s=GRID_RESTART_RUN_S,
    )


async def run_board_stop(
    profile: RigProfile,
    trials: int,
    grid: EnvelopeGrid,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    flows = trial_flows(profile)
    phase = random.Random(seed)
    board_ms: list[float] = []
    host_ms: list[float] = []
    for index in range(trials):
        flow = flows[index % len(flows)]
        # whole samples: the stepped rig moves in sample periods
        settle_s = SETTLE_S + round(phase.uniform(0.0, PHASE_S) / 0.002) * 0.002
        try:
            board_ms.append(await board_trial(profile, flow, settle_s, seed + index))
            host_ms.append(await host_trial(profile, flow, settle_s, seed + index))
        except BenchError as exc:
            raise BenchError(f"trial {index + 1} of {trials} ({flow:g} mL/min): {exc}") from None
        say(
            f"trial {index + 1}/{trials} at {flow:g} mL/min: board {board_ms[-1]:.3f} ms, "
            f"host {host_ms[-1]:.3f} ms"
        )
    say("healthy grid with the board's stop armed")
    healthy = EnvelopeResult()
    await run_healthy(profile, grid, healthy, seed=seed)
    board_cause = str(StopCause.BOARD_RESISTANCE_STOP)
    return {
        "benchmark": "board-stop",
        "trials": trials,
        "scenario": "tip_against_wall",
        "flows_ml_min": list(flows),
        "limit_mmhg_min_per_ml": profile.devices.board.resistance_stop_mmhg_min_per_ml,
        "persistence_samples": profile.devices.board.resistance_stop_samples,
        "p50_ms": round(percentile(board_ms, 50), 3),
        "p99_ms": round(percentile(board_ms, 99), 3),
        "max_ms": round(max(board_ms), 3),
        "mean_ms": round(statistics.fmean(board_ms), 3),
        "host_stop_p50_ms": round(percentile(host_ms, 50), 3),
        "host_stop_p99_ms": round(percentile(host_ms, 99), 3),
        "false_stops": len(healthy.false_stops),
        "false_board_stops": sum(f.cause == board_cause for f in healthy.false_stops),
        "envelope_simulated_minutes": round(healthy.simulated_s / 60.0, 2),
        "false_stop_details": [f.as_dict() for f in healthy.false_stops],
        "real_seconds": round(time.perf_counter() - started, 1),
    }
