"""Every reason a supervisor stops the pump, decided in one place.

`StopSupervisor` sees what the fluid controller sees (each pressure sample with its resistance
estimate, the freshness timer, each poll of the pump's dispensed volume) and returns a `Stop`:
the cause (rig/fluid/events.py's `StopCause`), an operator's message and the figures. It decides
and never acts: the controller hands each `Stop` to the interlock (`Interlock.trip`, or
`Interlock.cut_pump_power` for a pump that ignores its stop), which alone moves an actuator.

Stops decided here, in the order a sample is judged:

- `plausibility`: a redundant signal disagrees (the checks themselves, each with its distance
  and duration, are in rig/safety/supervisors.py: pressure_range, sample_gap, sensor_stuck,
  pressure_model, rest_zero on every sample; dispensed_volume on every pump poll). Judged on every
  sample, the pump running or not.
- while fluid moves (the pump runs in a motion mode), each limit held for
  `fluid.stop_persistence_samples` consecutive samples, timed from the first of them:
  `pressure_limit` (P >= limits.max_pressure_mmhg, every mode), `bolus_pressure_cap`
  (P >= limits.irrigation_pressure_cap_mmhg in a bolus), `resistance_limit`,
  `resistance_rise`, `leak_or_perforation` (R below limits.leak_resistance_fraction of the R
  this run settled to, for LEAK_PERSISTENCE_S, flow steady); then the cumulative volume caps
  `saline_volume_cap` and `contrast_volume_cap` (no persistence: a volume does not go back).
- `pressure_data_stale` (`check_freshness`, on a timer): no sample for STALE_AFTER_S while fluid
  moves; the samples cannot report that they stopped coming.
- `pump_did_not_stop` (`on_dispensed`): the pump still reports infusing RUNAWAY_GRACE_S after
  its stop, or its count grows past what it was told after a stop. Power cut, not a trip.
  While the pump runs, the dispensed-volume disagreement is a `plausibility` stop instead.

Other stop causes and where they are raised (the rest of `StopCause`):

- `operator`: FluidController.stop (the `fluid.stop` command). `completed`:
  FluidController._complete (a prime or bolus delivered its volume). `shutdown`:
  RigDaemon.request_shutdown and RigDaemon._stop_everything (rig/daemon.py).
- `pump_alarm`: PumpDevice._judge_alarm_at_connect (rig/devices/pump.py: an alarm at
  connect), PumpDevice.read (an alarm in the reply to a stop), FluidController.actuate_once (an
  alarm reply to a command).
- `pump_link_lost`: PumpDevice.on_lost (the link lost while fluid moved),
  FluidController.actuate_once (the pump did not answer a command or poll).
- `board_link_lost`: BoardDevice.on_lost (rig/devices/board.py). `board_trip`:
  BoardDevice.configure (a trip latched before this start), BoardDevice._handle_event (the
  board's watchdog or cut-off opened the relay). `board_resistance_stop`:
  BoardDevice._handle_event (the board's own resistance stop opened the relay, firmware/board.py;
  the host's limits here are tighter, so it acts only when these did not).
- `estop`: Interlock.estop (rig/safety/interlock.py), from BoardDevice._handle_event (the
  button) and the dispatcher's `estop` op (rig/api/dispatch.py).
- `loop_stall`: RigDaemon._on_loop_stall, after rig/safety/stall_guard.py's thread has stopped
  the pump itself.
- `self_test_failed`: Interlock.end_self_test, with rig/safety/selftest.py's report.
- `internal_fault`: FluidController._sample_handling_failed (an exception while a sample was
  judged here: supervision is blind, so it fails closed), RigDaemon._on_task_fault
  (rig/safety/containment.py).
- `api_lost`: ApiService.supervise (rig/api/service.py).
- `pedal_stuck`: PedalDevice._on_event (rig/devices/pedal.py): the irrigate pedal held past
  `devices.pedal.stuck_after_s` while fluid moved.
- `video_lost`: CameraDevice._stop_infusing_blind (rig/devices/camera.py): no frame from the
  scope for `devices.camera.video_loss_stop_ms` while irrigating, holding pressure or in a bolus
  (H19; priming runs outside the duct and goes on).

tests/fluid/test_supervision.py checks that this docstring names every `StopCause`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rig.config import LimitsConfig
from rig.fluid.events import Figure, StopCause
from rig.fluid.resistance import ResistanceReading
from rig.safety.supervisors import Finding, PlausibilitySettings, PlausibilitySupervisor

LEAK_SETTLE_S = 0.5
"""How long a steady irrigation runs before its resistance is the leak check's yardstick."""
LEAK_PERSISTENCE_S = 0.1
STALE_AFTER_S = 0.1
"""No pressure sample for 50 sample periods while fluid moves: the rig is blind; stop. As long
as the loop-stall guard's default (fluid.loop_stall_timeout_ms): a stall of the event loop that
the guard tolerates must not stop the fluid as blindness (50 ms did, on a loaded 2-core host:
a 56 ms gap during a bolus). Well inside the board's 250 ms watchdog; meanwhile the board's own
hard cut-off acts on every sample."""
RUNAWAY_GRACE_S = 0.1
"""A pump still infusing this long after its stop was written is a runaway: cut its power."""


@dataclass(frozen=True)
class Stop:
    """A supervisor's decision: stop the pump, for this cause."""

    cause: StopCause
    message: str
    figures: dict[str, Figure] = field(default_factory=dict)
    trigger_sample_t_us: int | None = None
    """Board timestamp of the first sample of the run over the limit."""
    cut_power: bool = False
    """The pump does not obey its stop: another STP is no use, its power relay is opened."""


class Persistence:
    """Counts consecutive samples for which a condition held.

    Persistence filters single noisy samples; the board timestamp of the *first* sample of the
    run over the limit is kept, because that is the moment the hazard was visible, and the stop
    latency is measured from it.
    """

    def __init__(self, samples: int) -> None:
        if samples < 1:
            raise ValueError(f"persistence must be at least 1 sample, got {samples}")
        self.samples = samples
        self._count = 0
        self.first_t_us: int | None = None

    def update(self, condition: bool, t_us: int) -> bool:
        """Feed one sample; True once the condition has held for `samples` samples in a row."""
        if not condition:
            self._count = 0
            self.first_t_us = None
            return False
        if self._count == 0:
            self.first_t_us = t_us
        self._count += 1
        return self._count >= self.samples

    def clear(self) -> None:
        self._count = 0
        self.first_t_us = None


@dataclass
class LeakReference:
    """The resistance a steady irrigation settled at: the yardstick for a falling resistance.

    A perforation or a leak opens a second outflow, so at the same flow the pressure, and with it
    the resistance, falls below what this run had settled to.
    """

    settle_samples: int
    reference: float | None = None
    _total: float = 0.0
    _count: int = 0

    def update(self, resistance: float) -> float | None:
        if self.reference is None:
            self._total += resistance
            self._count += 1
            if self._count >= self.settle_samples:
                self.reference = self._total / self._count
        return self.reference

    def clear(self) -> None:
        self.reference = None
        self._total = 0.0
        self._count = 0


class StopSupervisor:
    def __init__(
        self,
        limits: LimitsConfig,
        plausibility: PlausibilitySettings,
        *,
        persistence_samples: int,
        sample_period_s: float,
    ) -> None:
        self._limits = limits
        n = persistence_samples
        self._over_pressure = Persistence(n)
        self._over_resistance = Persistence(n)
        self._fast_rise = Persistence(n)
        self._bolus_cap = Persistence(n)
        self._leak = Persistence(round(LEAK_PERSISTENCE_S / sample_period_s))
        self._leak_reference = LeakReference(round(LEAK_SETTLE_S / sample_period_s))
        self._plausibility = PlausibilitySupervisor(plausibility)
        self._stopped_at_s: float | None = None

    # -- what the controller tells it --------------------------------------------------------

    def pump_stopped(self, cause: StopCause, now_s: float) -> None:
        """Every stop: the limit checks start over, and the runaway check is armed from the
        first stop (a power cut is the end of that story)."""
        for check in (
            self._over_pressure,
            self._over_resistance,
            self._fast_rise,
            self._bolus_cap,
            self._leak,
        ):
            check.clear()
        self._leak_reference.clear()
        if self._stopped_at_s is None and cause is not StopCause.PUMP_DID_NOT_STOP:
            self._stopped_at_s = now_s

    def fault_reset(self) -> None:
        self._plausibility.fault_reset()

    def sample_stream_restarted(self) -> None:
        self._plausibility.sample_stream_restarted()

    def pump_started(self) -> None:
        self._stopped_at_s = None

    def run_started(self) -> None:
        """The pump's count restarts with each run; the line model keeps its state, since the
        line may still hold the pressure of the run before."""
        self._plausibility.dispensed_volume.reset()

    # -- the decisions -------------------------------------------------------------------------

    def on_sample(
        self,
        t_us: int,
        pressure_mmhg: float,
        sample_counter: int,
        reading: ResistanceReading,
        *,
        flow_ml_min: float,
        pump_running: bool,
        moving: bool,
        bolus: bool,
        zero_trusted: bool,
        saline_ul: float,
        contrast_ul: float,
    ) -> Stop | None:
        """One pressure sample (500 Hz). `flow_ml_min` is the flow the pump was told (0 when it
        does not run); `moving`: it runs in a motion mode; `bolus`: that mode is a bolus."""
        finding = self._plausibility.on_sample(
            t_us,
            pressure_mmhg,
            sample_counter,
            flow_ml_min,
            pump_running,
            zero_trusted=zero_trusted,
        )
        if finding is not None:
            return implausible(finding)
        if not moving:
            return None
        figures: dict[str, Figure] = {
            "pressure_mmhg": round(pressure_mmhg, 2),
            "flow_ml_min": round(flow_ml_min, 4),
            "resistance_mmhg_min_per_ml": _rounded(reading.resistance_mmhg_min_per_ml),
            "resistance_rise_mmhg_min_per_ml_per_s": _rounded(reading.rise_mmhg_min_per_ml_per_s),
            "sample_t_us": t_us,
        }
        return self._limit_stop(t_us, pressure_mmhg, reading, bolus, figures) or self._volume_stop(
            t_us, saline_ul, contrast_ul, figures
        )

    def _limit_stop(
        self,
        t_us: int,
        pressure_mmhg: float,
        reading: ResistanceReading,
        bolus: bool,
        figures: dict[str, Figure],
    ) -> Stop | None:
        limits = self._limits
        if self._over_pressure.update(pressure_mmhg >= limits.max_pressure_mmhg, t_us):
            return _persistent(
                StopCause.PRESSURE_LIMIT,
                f"pressure {pressure_mmhg:.1f} mmHg at or above the limit {limits.max_pressure_mmhg:g} mmHg",
                figures | {"limit_mmhg": limits.max_pressure_mmhg},
                self._over_pressure,
            )
        if bolus and self._bolus_cap.update(
            pressure_mmhg >= limits.irrigation_pressure_cap_mmhg, t_us
        ):
            return _persistent(
                StopCause.BOLUS_PRESSURE_CAP,
                f"bolus pressure {pressure_mmhg:.1f} mmHg reached the cap {limits.irrigation_pressure_cap_mmhg:g} mmHg",
                figures | {"limit_mmhg": limits.irrigation_pressure_cap_mmhg},
                self._bolus_cap,
            )
        resistance = reading.resistance_mmhg_min_per_ml
        # A sample without an estimate breaks a run of samples over a limit: persistence counts
        # consecutive samples, and the first of the run is when the hazard showed.
        if self._over_resistance.update(
            resistance is not None and resistance >= limits.max_resistance_mmhg_min_per_ml, t_us
        ):
            return _persistent(
                StopCause.RESISTANCE_LIMIT,
                f"resistance {resistance:.1f} mmHg·min/mL at or above the limit {limits.max_resistance_mmhg_min_per_ml:g}",
                figures | {"limit_mmhg_min_per_ml": limits.max_resistance_mmhg_min_per_ml},
                self._over_resistance,
            )
        rise = reading.rise_mmhg_min_per_ml_per_s
        if self._fast_rise.update(
            rise is not None and rise >= limits.max_resistance_rise_mmhg_min_per_ml_per_s, t_us
        ):
            return _persistent(
                StopCause.RESISTANCE_RISE,
                f"resistance rising at {rise:.1f} mmHg·min/mL per s, above the limit {limits.max_resistance_rise_mmhg_min_per_ml_per_s:g}",
                figures
                | {"limit_mmhg_min_per_ml_per_s": limits.max_resistance_rise_mmhg_min_per_ml_per_s},
                self._fast_rise,
            )
        if resistance is not None and reading.flow_steady:
            reference = self._leak_reference.update(resistance)
            if reference is not None and self._leak.update(
                resistance < limits.leak_resistance_fraction * reference, t_us
            ):
                return _persistent(
                    StopCause.LEAK_OR_PERFORATION,
                    f"resistance fell to {resistance:.1f} from {reference:.1f} mmHg·min/mL while flow continued",
                    figures
                    | {
                        "reference_mmhg_min_per_ml": round(reference, 3),
                        "fraction_limit": limits.leak_resistance_fraction,
                    },
                    self._leak,
                )
        else:
            self._leak_reference.clear()
            self._leak.clear()
        return None

    def _volume_stop(
        self, t_us: int, saline_ul: float, contrast_ul: float, figures: dict[str, Figure]
    ) -> Stop | None:
        limits = self._limits
        if saline_ul >= limits.saline_volume_cap_ml * 1000.0:
            return Stop(
                StopCause.SALINE_VOLUME_CAP,
                f"saline volume {saline_ul / 1000:.3f} mL reached the cap {limits.saline_volume_cap_ml:g} mL",
                figures | {"saline_ml": round(saline_ul / 1000, 4)},
                t_us,
            )
        if contrast_ul >= limits.contrast_volume_cap_ml * 1000.0:
            return Stop(
                StopCause.CONTRAST_VOLUME_CAP,
                f"contrast volume {contrast_ul / 1000:.3f} mL reached the cap {limits.contrast_volume_cap_ml:g} mL",
                figures | {"contrast_ml": round(contrast_ul / 1000, 4)},
                t_us,
            )
        return None

    def check_freshness(self, now_s: float, last_sample_rx_s: float | None) -> Stop | None:
        """Called on a timer while fluid moves: the samples cannot report that they stopped."""
        age_s = None if last_sample_rx_s is None else now_s - last_sample_rx_s
        if age_s is not None and age_s <= STALE_AFTER_S:
            return None
        return Stop(
            StopCause.PRESSURE_DATA_STALE,
            "no pressure sample for "
            + ("ever" if age_s is None else f"{age_s * 1000:.0f} ms")
            + f" while fluid moves (limit {STALE_AFTER_S * 1000:.0f} ms)",
            {"sample_age_ms": None if age_s is None else round(age_s * 1000, 1)},
        )

    def on_dispensed(
        self,
        now_s: float,
        t_us: int,
        *,
        pump_ul: float,
        host_ul: float,
        infusing: bool,
        pump_running: bool,
    ) -> Stop | None:
        """One poll of the pump: its own count for this run, and whether it says it infuses.

        Two independent signs of a pump that does not obey its stop: it still says it infuses
        after the stop went out, or its count keeps growing past what it was told to deliver.
        Either way another STP would be no use: its power is cut.
        """
        stopped_at_s = self._stopped_at_s
        if (
            infusing
            and not pump_running
            and stopped_at_s is not None
            and now_s - stopped_at_s > RUNAWAY_GRACE_S
        ):
            late_ms = (now_s - stopped_at_s) * 1000.0
            self._stopped_at_s = None
            return Stop(
                StopCause.PUMP_DID_NOT_STOP,
                f"the pump still reports infusing {late_ms:.0f} ms after its stop command: "
                "its power relay was opened",
                {"infused_ul": round(pump_ul, 1), "after_stop_ms": round(late_ms, 1)},
                cut_power=True,
            )
        finding = self._plausibility.on_dispensed(t_us, pump_ul, host_ul)
        if finding is None:
            return None
        if pump_running:
            return implausible(finding)
        return Stop(
            StopCause.PUMP_DID_NOT_STOP,
            f"{finding.message} after its stop: power relay opened",
            {**finding.figures, "check": finding.check},
            cut_power=True,
        )


def implausible(finding: Finding) -> Stop:
    return Stop(
        StopCause.PLAUSIBILITY,
        finding.message,
        {**finding.figures, "check": finding.check},
        finding.first_t_us,
    )


def _persistent(
    cause: StopCause, message: str, figures: dict[str, Figure], persistence: Persistence
) -> Stop:
    return Stop(cause, message, figures, persistence.first_t_us)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
