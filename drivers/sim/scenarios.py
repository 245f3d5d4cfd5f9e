"""Scripted scenarios for the fluid world, and a runner that plays them faster than real time.

A scenario is a small object whose `apply(world, t_since_start_s)` is called before every world
step; it changes the world's outflow resistances through the world's scenario hooks. Scenarios
hold their own "has fired" state, so make a fresh one per run (the registry's factories do).

    scenario = make_scenario("tip_against_wall", delay_s=2.0, factor=12.0)
    rows = run_scenario(FluidWorld(), scenario, lambda t: 1.0, duration_s=5.0, dt_s=0.0005,
                        clock=ManualClock())

Pure: no I/O, no asyncio. The runner steps a ManualClock, so a 10-minute slow leak takes a
fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar, NamedTuple

from drivers.clock import ManualClock
from drivers.sim.world import FluidWorld


def _check(scenario: str, name: str, value: float, *, low: float, low_inclusive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{scenario}.{name} = {value!r}: expected a number")
    ok = value >= low if low_inclusive else value > low
    if not (ok and math.isfinite(value)):
        relation = ">=" if low_inclusive else ">"
        raise ValueError(f"{scenario}.{name} = {value}: expected a finite value {relation} {low}")


class Scenario:
    """Base of all scenarios: a name, a description, and `apply` called every step."""

    name: ClassVar[str] = "scenario"
    description: ClassVar[str] = ""

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        raise NotImplementedError


@dataclass
class Normal(Scenario):
    """Nothing happens: the baseline for soak runs."""

    name: ClassVar[str] = "normal"
    description: ClassVar[str] = "Nothing happens; baseline tip resistance, no leak (soak runs)."

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        return None


@dataclass
class TipAgainstWall(Scenario):
    """After delay_s the tip resistance rises by `factor` over ramp_s, linearly in log-space:
    the tip pushing into a wall or a branch too narrow for it."""

    name: ClassVar[str] = "tip_against_wall"
    description: ClassVar[str] = (
        "After delay_s, tip resistance rises from baseline to factor x baseline over ramp_s "
        "(log-linear): the scope tip meets a wall."
    )
    delay_s: float = 0.0
    factor: float = 12.0
    ramp_s: float = 0.1
    _fired: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.name, "delay_s", self.delay_s, low=0.0, low_inclusive=True)
        _check(self.name, "factor", self.factor, low=1.0, low_inclusive=False)
        _check(self.name, "ramp_s", self.ramp_s, low=0.0, low_inclusive=True)

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        if not self._fired and t_since_start_s >= self.delay_s:
            self._fired = True
            baseline = world.params.tip_resistance_mmhg_min_per_ml
            world.set_tip_resistance_target(baseline * self.factor, self.ramp_s)


@dataclass
class FullOcclusion(Scenario):
    """After delay_s the tip resistance goes to infinity within ramp_s (a stopcock closing, the
    tip wedged in a branch)."""

    name: ClassVar[str] = "full_occlusion"
    description: ClassVar[str] = (
        "After delay_s, tip resistance goes to infinity within ramp_s (default 20 ms): nothing "
        "escapes around the tip, pressure rises at flow / compliance."
    )
    delay_s: float = 0.0
    ramp_s: float = 0.02
    _fired: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.name, "delay_s", self.delay_s, low=0.0, low_inclusive=True)
        _check(self.name, "ramp_s", self.ramp_s, low=0.0, low_inclusive=True)

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        if not self._fired and t_since_start_s >= self.delay_s:
            self._fired = True
            world.occlude(self.ramp_s)


@dataclass
class Perforation(Scenario):
    """After delay_s a low-resistance leak opens abruptly: pressure falls while flow continues.

    This is a scripted (mechanical) perforation for the rig to detect; it does not set the
    world's `perforated` flag, which marks only a pressure-induced perforation (the harm the rig
    must prevent)."""

    name: ClassVar[str] = "perforation"
    description: ClassVar[str] = (
        "After delay_s, a leak of leak_resistance_mmhg_min_per_ml (default 3) opens at once: "
        "pressure falls while the pump keeps flowing."
    )
    delay_s: float = 0.0
    leak_resistance_mmhg_min_per_ml: float = 3.0
    _fired: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.name, "delay_s", self.delay_s, low=0.0, low_inclusive=True)
        _check(
            self.name,
            "leak_resistance_mmhg_min_per_ml",
            self.leak_resistance_mmhg_min_per_ml,
            low=0.0,
            low_inclusive=False,
        )

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        if not self._fired and t_since_start_s >= self.delay_s:
            self._fired = True
            world.set_leak_resistance(self.leak_resistance_mmhg_min_per_ml)


@dataclass
class SlowLeak(Scenario):
    """After delay_s a leak opens gradually: its conductance grows linearly from zero, so its
    resistance falls from infinity to final_factor x baseline tip resistance at ramp_s."""

    name: ClassVar[str] = "slow_leak"
    description: ClassVar[str] = (
        "After delay_s, leak resistance falls from infinity to final_factor x baseline tip "
        "resistance over ramp_s (default 10 min; conductance linear in time)."
    )
    delay_s: float = 0.0
    ramp_s: float = 600.0
    final_factor: float = 2.0
    _done: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.name, "delay_s", self.delay_s, low=0.0, low_inclusive=True)
        _check(self.name, "ramp_s", self.ramp_s, low=0.0, low_inclusive=True)
        _check(self.name, "final_factor", self.final_factor, low=0.0, low_inclusive=False)

    def apply(self, world: FluidWorld, t_since_start_s: float) -> None:
        if self._done or t_since_start_s < self.delay_s:
            return
        final_r = world.params.tip_resistance_mmhg_min_per_ml * self.final_factor
        elapsed_s = t_since_start_s - self.delay_s
        if elapsed_s >= self.ramp_s:
            self._done = True
            world.set_leak_resistance(final_r)
        elif elapsed_s > 0:
            # Conductance linear in time: resistance = final_r · ramp / elapsed.
            world.set_leak_resistance(final_r * self.ramp_s / elapsed_s)


_SCENARIO_CLASSES: tuple[type[Scenario], ...] = (
    Normal,
    TipAgainstWall,
    FullOcclusion,
    Perforation,
    SlowLeak,
)


def _parameters(cls: type[Scenario]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.init)  # type: ignore[arg-type]


def _factory(cls: type[Scenario]) -> Callable[..., Scenario]:
    known = _parameters(cls)

    def make(**params: float) -> Scenario:
        for key in params:
            if key not in known:
                listed = ", ".join(known) if known else "none"
                raise ValueError(
                    f"scenario {cls.name!r} has no parameter {key!r}; known parameters: {listed}"
                )
        return cls(**params)

    make.__name__ = f"make_{cls.name}"
    make.__doc__ = cls.description
    return make


class _Registry(dict[str, Callable[..., Scenario]]):
    """A dict whose missing names raise ValueError listing the known ones (not a bare KeyError)."""

    def __missing__(self, key: str) -> Callable[..., Scenario]:
        raise ValueError(f"unknown scenario {key!r}; known scenarios: {', '.join(sorted(self))}")


SCENARIOS: dict[str, Callable[..., Scenario]] = _Registry(
    {cls.name: _factory(cls) for cls in _SCENARIO_CLASSES}
)
"""Scenario name -> factory taking that scenario's keyword parameters."""


def make_scenario(name: str, **params: float) -> Scenario:
    """A fresh scenario by name; unknown names and parameters raise ValueError naming the
    known ones, bad values raise ValueError naming the field, value and expectation."""
    return SCENARIOS[name](**params)


class TraceRow(NamedTuple):
    """One recorded instant of a scenario run (world time since the run started)."""

    t_s: float
    pump_flow_ml_min: float
    line_pressure_mmhg: float
    duct_pressure_mmhg: float
    tip_flow_ml_min: float
    leak_flow_ml_min: float
    tip_resistance_mmhg_min_per_ml: float
    leak_resistance_mmhg_min_per_ml: float
    pumped_ml: float
    into_duct_ml: float
    leaked_ml: float
    perforated: bool


def _row(world: FluidWorld, t_s: float) -> TraceRow:
    return TraceRow(
        t_s,
        world.pump_flow_ml_min,
        world.line_pressure_mmhg,
        world.duct_pressure_mmhg,
        world.tip_flow_ml_min,
        world.leak_flow_ml_min,
        world.tip_resistance_mmhg_min_per_ml,
        world.leak_resistance_mmhg_min_per_ml,
        world.pumped_ml,
        world.into_duct_ml,
        world.leaked_ml,
        world.perforated,
    )


def run_scenario(
    world: FluidWorld,
    scenario: Scenario,
    pump_flow_ml_min: Callable[[float], float],
    duration_s: float,
    dt_s: float,
    clock: ManualClock,
    *,
    record_period_s: float = 0.01,
) -> list[TraceRow]:
    """Play `scenario` on `world` for duration_s in steps of dt_s, as fast as the CPU allows.

    Each step: the pump flow for the current time (`pump_flow_ml_min(t_since_start_s)`) goes
    into the world, the scenario applies, the world steps dt_s and the clock advances dt_s.
    Rows are recorded at the start, then about every record_period_s (0 = every step), and at
    the end: a 10-minute run at every step would be a million rows.
    """
    if not (0 < dt_s < math.inf):
        raise ValueError(f"dt_s = {dt_s}: expected a finite value > 0")
    if not (0 <= duration_s < math.inf):
        raise ValueError(f"duration_s = {duration_s}: expected a finite value >= 0")
    if not (0 <= record_period_s < math.inf):
        raise ValueError(f"record_period_s = {record_period_s}: expected a finite value >= 0")
    # Step count fixed up front so float accumulation cannot add or drop a step.
    n_steps = round(duration_s / dt_s)
    # The first row shows the flow commanded for t = 0, not whatever the world held before.
    world.set_pump_flow(pump_flow_ml_min(0.0))
    rows = [_row(world, 0.0)]
    next_record_s = record_period_s
    last = n_steps - 1
    # Bound methods in locals: this loop runs a million times for a 10-minute scenario.
    set_flow = world.set_pump_flow
    apply = scenario.apply
    step = world.step
    advance = clock.advance
    tolerance_s = 1e-9 * dt_s  # a period that is a multiple of dt must not slip by rounding
    for k in range(n_steps):
        t_s = k * dt_s
        set_flow(pump_flow_ml_min(t_s))
        apply(world, t_s)
        step(dt_s)
        advance(dt_s)
        t_end_s = t_s + dt_s
        if t_end_s >= next_record_s - tolerance_s or k == last:
            rows.append(_row(world, t_end_s))
            next_record_s += record_period_s
            if next_record_s < t_end_s:
                next_record_s = t_end_s + record_period_s
    return rows
