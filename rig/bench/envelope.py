"""`rig bench envelope`: no nuisance stop anywhere in the operating envelope, and no missed wall.

The rig's fluid controller and interlock run on the stepped clock against the simulator's world
and emulators (rig.bench.stepped_rig), faster than real time, over a grid that covers what a
surgeon may ask of the rig:

- irrigation at every grid flow, log-spaced from the profile's minimum to its maximum;
- pressure mode across the allowed setpoints;
- boluses across the allowed rates;
- flow changes up and down while the pump runs, and changes of mode;
- stop, then restart after 0.1 to 5 s.

On a healthy duct any stop other than the operator's, or a bolus or prime completing, is a false
stop: `false_stops` must be 0. On the same grid points the tip meets the wall and the outflow is
fully occluded, each in several trials at different moments and noise: each must stop the pump,
and the time from the event to the stop command leaving the host is recorded. After each
occlusion stop the occlusion is released, and the volume the line then flushes into the duct is
the post-release bolus (IEC 60601-2-24's occlusion test, clinical.md).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from drivers.sim.scenarios import make_scenario
from rig.bench.session import percentile_figure
from rig.bench.stepped_rig import SteppedRig
from rig.config import RigProfile
from rig.fluid.events import StopCause, StopEvent

EXPECTED_CAUSES = frozenset({StopCause.OPERATOR, StopCause.COMPLETED})
"""Stops a healthy duct may see: the operator's own, and a bolus or prime that completed."""
SETTLE_S = 3.0
"""Irrigation before a wall or occlusion trial: the estimators have seen the flow steady."""
DETECT_TIMEOUT_S = 20.0
PRIME_S = 1.0
"""Long enough for the profile's prime (20 uL at 2 mL/min on the simulator: 0.6 s) to complete."""
RESTART_AFTER_STOP_S = 5.0
"""After each wall or occlusion trial the same command runs again on the freed duct this long."""
RELEASE_OBSERVE_S = 5.0
"""After the occlusion is released, the held volume drains into the duct in a few time
constants of the healthy line (0.3 s); 5 s catches all of it."""


@dataclass(frozen=True)
class EnvelopeGrid:
    flows_ml_min: tuple[float, ...]
    pressures_mmhg: tuple[float, ...]
    bolus_rates_ml_min: tuple[float, ...]
    restart_delays_s: tuple[float, ...]
    steady_s: float = 60.0
    """Healthy irrigation at each flow, at each pressure setpoint, and each bolus."""
    change_dwell_s: float = 5.0
    """Time at each step of a flow-change sequence."""
    restart_run_s: float = 6.0
    """Irrigation before each stop and after each restart."""
    trials: int = 5
    """Wall and occlusion trials per grid point."""

    @classmethod
    def for_profile(cls, profile: RigProfile, *, flows: int = 10, trials: int = 5) -> EnvelopeGrid:
        limits = profile.limits
        low, high = limits.min_flow_for_resistance_ml_min, limits.max_flow_ml_min
        return cls(
            flows_ml_min=log_spaced(low, high, flows),
            pressures_mmhg=tuple(
                round(x, 3) for x in _lin_spaced(5.0, limits.irrigation_pressure_cap_mmhg, 6)
            ),
            bolus_rates_ml_min=log_spaced(low, limits.bolus_max_rate_ml_min, 4),
            restart_delays_s=(0.1, 0.3, 1.0, 2.0, 5.0),
            trials=trials,
        )


def log_spaced(low: float, high: float, n: int) -> tuple[float, ...]:
    if n < 2 or low == high:
        return (low,)
    ratio = (high / low) ** (1.0 / (n - 1))
    values = [low * ratio**i for i in range(n)]
    values[-1] = high  # exactly the profile's maximum, not a rounding of it
    return tuple(round(v, 4) for v in values)


def _lin_spaced(low: float, high: float, n: int) -> list[float]:
    return [low + (high - low) * i / (n - 1) for i in range(n)]


@dataclass
class FalseStop:
    segment: str
    cause: str
    message: str
    simulated_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "cause": self.cause,
            "message": self.message,
            "at_simulated_s": round(self.simulated_s, 3),
        }


@dataclass
class Detection:
    detected: bool
    delay_ms: float
    cause: str | None
    bolus_after_release_ul: float | None = None


@dataclass
class PointResult:
    kind: str
    """"irrigate", "pressure" or "bolus"."""
    value: float
    wall: list[Detection] = field(default_factory=list)
    occlusion: list[Detection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        unit = {"irrigate": "flow_ml_min", "pressure": "pressure_mmhg", "bolus": "rate_ml_min"}
        boluses = [d.bolus_after_release_ul for d in self.occlusion if d.detected]
        # The delays of the trials that detected (None: none did).
        wall_ms = [d.delay_ms for d in self.wall if d.detected]
        occlusion_ms = [d.delay_ms for d in self.occlusion if d.detected]
        return {
            unit[self.kind]: self.value,
            "detect_wall_ms_p50": percentile_figure(wall_ms, 50, 1),
            "detect_wall_ms_p99": percentile_figure(wall_ms, 99, 1),
            "detect_occlusion_ms_p50": percentile_figure(occlusion_ms, 50, 1),
            "detect_occlusion_ms_p99": percentile_figure(occlusion_ms, 99, 1),
            "bolus_after_release_ul_max": (
                None if not boluses else round(max(b for b in boluses if b is not None), 2)
            ),
            "missed_wall": sum(not d.detected for d in self.wall),
            "missed_occlusion": sum(not d.detected for d in self.occlusion),
            "causes": sorted({str(d.cause) for d in self.wall + self.occlusion if d.cause}),
        }


@dataclass
class EnvelopeResult:
    simulated_s: float = 0.0
    false_stops: list[FalseStop] = field(default_factory=list)
    points: list[PointResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        by_kind = {
            kind: [p.as_dict() for p in self.points if p.kind == kind]
            for kind in ("irrigate", "pressure", "bolus")
        }
        missed = sum(sum(not d.detected for d in p.wall + p.occlusion) for p in self.points)
        return {
            "false_stops": len(self.false_stops),
            "simulated_minutes": round(self.simulated_s / 60.0, 2),
            "missed_detections": missed,
            "flows": by_kind["irrigate"],
            "pressure_setpoints": by_kind["pressure"],
            "bolus_rates": by_kind["bolus"],
            "false_stop_details": [f.as_dict() for f in self.false_stops],
        }


class _Segment:
    """A healthy stretch on one rig: every unexpected stop in it is a false stop."""

    def __init__(self, rig: SteppedRig, name: str, result: EnvelopeResult) -> None:
        self.rig = rig
        self.name = name
        self.result = result
        self._seen = len(rig.stops)
        self._started_s = rig.clock.monotonic()

    async def run(self, seconds: float) -> None:
        await self.rig.run_for(seconds)
        self.result.simulated_s += seconds
        await self._collect()

    async def _collect(self) -> None:
        rig = self.rig
        for event in rig.stops[self._seen :]:
            if event.cause not in EXPECTED_CAUSES:
                self.result.false_stops.append(
                    FalseStop(
                        self.name,
                        str(event.cause),
                        event.message,
                        rig.clock.monotonic() - self._started_s,
                    )
                )
        self._seen = len(rig.stops)
        if rig.interlock.latched is not None:
            # Carry on from a reset rig: the rest of the segment still counts.
            await rig.controller.reset()


async def run_healthy(
    profile: RigProfile, grid: EnvelopeGrid, result: EnvelopeResult, *, seed: int
) -> None:
    """Every healthy segment of the grid; unexpected stops land in `result.false_stops`."""
    for i, flow in enumerate(grid.flows_ml_min):
        rig = SteppedRig(profile, seed=seed + i)
        # The line is primed first, and irrigation follows on the line the prime pressurised.
        segment = _Segment(rig, f"prime, then irrigate {flow:g} mL/min", result)
        rig.controller.prime()
        await segment.run(PRIME_S)
        rig.controller.irrigate(flow)
        await segment.run(grid.steady_s)
        # Stop, then restart after each delay, at this flow.
        for delay in grid.restart_delays_s:
            segment.name = f"irrigate {flow:g} mL/min, restart after {delay:g} s"
            rig.controller.stop()
            await segment.run(delay)
            rig.controller.irrigate(flow)
            await segment.run(grid.restart_run_s)
        rig.controller.stop()
        await segment.run(1.0)
    flows = grid.flows_ml_min
    sequences = [
        ("up", list(flows)),
        ("down", list(reversed(flows))),
        ("zigzag", [v for pair in zip(flows, reversed(flows), strict=True) for v in pair]),
    ]
    for j, (name, sequence) in enumerate(sequences):
        rig = SteppedRig(profile, seed=seed + 100 + j)
        segment = _Segment(rig, f"flow changes {name}", result)
        for flow in sequence:
            rig.controller.irrigate(flow)
            await segment.run(grid.change_dwell_s)
        rig.controller.stop()
        await segment.run(1.0)
    for k, pressure in enumerate(grid.pressures_mmhg):
        rig = SteppedRig(profile, seed=seed + 200 + k)
        segment = _Segment(rig, f"pressure {pressure:g} mmHg", result)
        rig.controller.hold_pressure(pressure)
        await segment.run(grid.steady_s)
        # Mode changes while running: pressure -> irrigation -> pressure, then a stop.
        segment.name = f"pressure {pressure:g} mmHg, mode changes"
        rig.controller.irrigate(grid.flows_ml_min[len(grid.flows_ml_min) // 2])
        await segment.run(grid.change_dwell_s)
        rig.controller.hold_pressure(pressure)
        await segment.run(grid.change_dwell_s)
        rig.controller.stop()
        await segment.run(1.0)
    for m, rate in enumerate(grid.bolus_rates_ml_min):
        rig = SteppedRig(profile, seed=seed + 300 + m)
        segment = _Segment(rig, f"bolus {rate:g} mL/min", result)
        volume_ml = min(rate * grid.steady_s / 60.0, profile.limits.contrast_volume_cap_ml / 2)
        rig.controller.bolus(volume_ml, rate)
        await segment.run(grid.steady_s + 2.0)
        # Irrigation after a bolus, and a bolus after irrigation (stop between: no switch of
        # fluid while the pump runs).
        segment.name = f"bolus {rate:g} mL/min, then irrigation"
        rig.controller.irrigate(grid.flows_ml_min[0])
        await segment.run(grid.change_dwell_s)
        rig.controller.stop()
        await segment.run(0.5)


async def _detect(rig: SteppedRig, scenario: str, *, release: bool) -> Detection:
    seen = len(rig.stops)
    started_s = rig.clock.monotonic()
    rig.start_scenario(make_scenario(scenario))

    def stopped() -> StopEvent | None:
        # A bolus that completes against the wall is no detection: only a supervision stop is.
        return next((e for e in rig.stops[seen:] if e.cause not in EXPECTED_CAUSES), None)

    await rig.run_until(lambda: stopped() is not None, DETECT_TIMEOUT_S)
    event = stopped()
    if event is None:
        return Detection(False, DETECT_TIMEOUT_S * 1000.0, None)
    stop_s = (
        event.stop_tx_done_us / 1e6 if event.stop_tx_done_us is not None else rig.clock.monotonic()
    )
    detection = Detection(True, (stop_s - started_s) * 1000.0, str(event.cause))
    if release:
        # Let any relief finish, then release the occlusion: what the line holds flushes in.
        await rig.run_for(1.0)
        released_s = rig.clock.monotonic()
        rig.clear_scenario()
        await rig.run_for(RELEASE_OBSERVE_S)
        detection.bolus_after_release_ul = rig.world.into_duct_since(released_s) * 1000.0
    return detection


Starter = Callable[[SteppedRig], None]


async def run_detection(
    profile: RigProfile,
    kind: str,
    value: float,
    start: Starter,
    trials: int,
    result: EnvelopeResult,
    *,
    seed: int,
) -> PointResult:
    """Wall and occlusion trials at one grid point; after each, the surgeon's next step: the
    tip freed, the fault reset, the same command again on a healthy duct (a healthy segment)."""
    point = PointResult(kind, value)
    jitter = random.Random(seed)
    for trial in range(trials):
        for scenario, bucket in (
            ("tip_against_wall", point.wall),
            ("full_occlusion", point.occlusion),
        ):
            rig = SteppedRig(profile, seed=seed + trial)
            start(rig)
            # A different moment each trial: the event meets the noise at another phase.
            settle_s = SETTLE_S + jitter.uniform(0.0, 1.0)
            segment = _Segment(rig, f"{kind} {value:g}, before the {scenario}", result)
            await segment.run(settle_s)
            if rig.stops:
                continue  # a false stop before the event: counted by the segment
            bucket.append(await _detect(rig, scenario, release=scenario == "full_occlusion"))
            rig.clear_scenario()
            await rig.controller.reset()
            segment = _Segment(rig, f"{kind} {value:g}, restarted after the {scenario}", result)
            start(rig)
            await segment.run(RESTART_AFTER_STOP_S)
    return point


async def run_envelope(
    profile: RigProfile,
    grid: EnvelopeGrid,
    *,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    result = EnvelopeResult()
    say = progress or (lambda _message: None)
    say("healthy duct: irrigation, restarts, flow changes, pressure mode, boluses")
    await run_healthy(profile, grid, result, seed=seed)
    starters: Iterable[tuple[str, float, Starter]] = [
        *(("irrigate", f, _irrigator(f)) for f in grid.flows_ml_min),
        *(("pressure", p, _presser(p)) for p in grid.pressures_mmhg),
        *(("bolus", r, _boluser(r, profile)) for r in grid.bolus_rates_ml_min),
    ]
    for n, (kind, value, start) in enumerate(starters):
        say(f"wall and occlusion: {kind} {value:g}")
        result.points.append(
            await run_detection(
                profile, kind, value, start, grid.trials, result, seed=seed + 1000 * n
            )
        )
    figures = result.as_dict()
    figures["real_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def _irrigator(flow: float) -> Starter:
    return lambda rig: rig.controller.irrigate(flow)


def _presser(pressure: float) -> Starter:
    return lambda rig: rig.controller.hold_pressure(pressure)


def _boluser(rate: float, profile: RigProfile) -> Starter:
    # Enough volume that the bolus is still running when the event comes.
    volume = min(profile.limits.contrast_volume_cap_ml, rate * (SETTLE_S + DETECT_TIMEOUT_S) / 60)
    return lambda rig: rig.controller.bolus(volume, rate)
