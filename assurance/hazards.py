"""The hazard registry: one source of truth for the rig's hazards and their risk controls.

ISO 14971 terms: a *hazard* is a potential source of harm; a *cause* is the sequence of events
that leads from it to a hazardous situation; *harm* is the injury that may follow; a *risk
control* is the measure that prevents the sequence or limits the harm. Verification of each
control is by automated tests that name the hazard they verify with the pytest marker
``@pytest.mark.hazard("Hxx", ...)`` (tests/hazard_plugin.py): the tests say what they prove,
this table says what must be proven, and `rig safety report` joins the two.

Probability is not estimated: for software, IEC 62304 (4.3, 7.1) asks to assume that a failure
of the software occurs, so each hazard is judged on its severity alone, and the risk is reduced
by controls, preferably ones that do not depend on the software that failed (device-side).

docs/safety/hazards.md is rendered from this module (`assurance.report.render_hazards_markdown`);
a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


class Severity(Enum):
    """A five-level severity scale in the style of ISO 14971 (annex C / ISO TR 24971)."""

    NEGLIGIBLE = (1, "negligible", "inconvenience or temporary discomfort")
    MINOR = (2, "minor", "temporary injury or impairment not needing professional medical care")
    SERIOUS = (
        3,
        "serious",
        "injury or impairment needing professional medical care (IEC 62304: a serious injury)",
    )
    CRITICAL = (4, "critical", "permanent impairment or life-threatening injury")
    CATASTROPHIC = (5, "catastrophic", "death")

    def __init__(self, rank: int, label: str, meaning: str) -> None:
        self.rank = rank
        self.label = label
        self.meaning = meaning

    def __str__(self) -> str:
        return self.label


class Layer(StrEnum):
    """The four independent layers of rig.md ("Safety, in layers")."""

    DEVICE = "device-side"
    INTERLOCK = "host interlock"
    SUPERVISION = "supervision"
    EVIDENCE = "evidence"


@dataclass(frozen=True)
class Control:
    """One risk control.

    `code` names the code that implements it, as ``module:Qualified.name`` (importable: the
    tests check it exists). For a device-side control the code named is the host call that arms
    it and, where it helps, the emulator model that stands in for the device's firmware. A
    `planned` control is being built: its `code` says where it is expected and is not checked.
    """

    layer: Layer
    does: str
    code: str
    planned: bool = False


class Status(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"


@dataclass(frozen=True)
class Hazard:
    id: str
    title: str
    causes: tuple[str, ...]
    harm: str
    severity: Severity
    controls: tuple[Control, ...]
    status: Status = Status.ACTIVE
    pending_reason: str | None = None
    """Why a pending hazard has no verified control yet, e.g. "pedal not built yet"."""

    @property
    def pending(self) -> bool:
        return self.status is Status.PENDING


def _c(layer: Layer, does: str, code: str) -> Control:
    return Control(layer, does, code)


def _planned(layer: Layer, does: str, code: str) -> Control:
    return Control(layer, does, code, planned=True)


DEV, LOCK, SUP, EVIDENCE = Layer.DEVICE, Layer.INTERLOCK, Layer.SUPERVISION, Layer.EVIDENCE

_TRIP = _c(
    LOCK,
    "every stop writes the pump's safe-mode STP frame at once, ahead of anything queued, and "
    "latches the fault",
    "rig.safety.interlock:Interlock.trip",
)
_STOP_FRAME = _c(
    DEV,
    "the stop frame the pump acts on, written without awaiting the link",
    "drivers.ne1000.driver:Ne1000Pump.stop_nowait",
)
_BOARD_WATCHDOG = _c(
    DEV,
    "the I/O board opens the pump's power relay when heartbeats stop (watchdog armed by the "
    "host at connect; the firmware, firmware/board.py Board.sample, which the simulator runs)",
    "drivers.ioboard.driver:IoBoard.configure_watchdog",
)
_HEARTBEAT = _c(
    DEV,
    "the daemon feeds the board's watchdog from its event loop: heartbeats stop when it dies "
    "or stalls",
    "rig.devices.board:BoardDevice._heartbeat",
)
_PUMP_SAFE_MODE = _c(
    DEV,
    "the pump's safe-mode timeout stops it when the host stops talking (emulated in "
    "Ne1000Device._fire_watchdog)",
    "drivers.ne1000.driver:Ne1000Pump.connect",
)
_RELAY_FALLBACK = _c(
    LOCK,
    "when the stop cannot be written to the pump, the trip opens the pump's power relay instead",
    "rig.safety.interlock:Interlock.trip",
)
_LATCH = _c(
    LOCK,
    "a latched fault refuses every motion (each step of a start is checked) until an operator "
    "resets it",
    "rig.safety.interlock:Interlock.infuse",
)
_BOARD_RESISTANCE_STOP = _c(
    DEV,
    "the I/O board's own resistance stop, independent of the host's: the host tells it every "
    "commanded flow (0 at every stop and reset) with its limit, looser than the host's "
    "(devices.board.resistance_stop_mmhg_min_per_ml, 60); the board divides its own pressure "
    "samples by the largest of that flow and two lags of it and opens the pump relay itself "
    "after 2 samples at or over the limit (2 ms from its trigger sample, no serial wire in the "
    "path), latching a trip the host reports as board_resistance_stop (the firmware, "
    "firmware/board.py Board._check_resistance, which the simulator runs)",
    "drivers.ioboard.driver:IoBoard.set_flow_nowait",
)
_BOARD_CUTOFF = _c(
    DEV,
    "the I/O board opens the pump relay at its hard pressure cut-off (set by the host at "
    "connect; the firmware, firmware/board.py Board.sample, which the simulator runs)",
    "drivers.ioboard.driver:IoBoard.set_cutoff",
)
_STALE = _c(
    SUP,
    "no pressure sample for 100 ms while fluid moves: stop (pressure_data_stale)",
    "rig.fluid.supervision:StopSupervisor.check_freshness",
)
_PLAUSIBILITY = _c(
    SUP,
    "plausibility supervisor wired into the fluid loop: every pressure sample feeds "
    "rig.safety.supervisors:PlausibilitySupervisor (and every dispensed-volume poll, "
    "StopSupervisor.on_dispensed); a finding trips and latches the interlock, cause "
    "plausibility (rig.fluid.supervision.implausible)",
    "rig.fluid.controller:FluidController.on_sample",
)
_PRESSURE_MODEL = _c(
    SUP,
    "plausibility: measured pressure vs the pressure a model of the line predicts from the "
    "pump's flow, with a distance (3 mmHg, widened by the learned resistance's noise times the "
    "flow) and a duration (300 ms) tolerance, while the pump runs (pressure_model); before it "
    "has learned this duct's resistance (from settled, agreeing blocks) it checks only that the "
    "pressure is not below what the lowest plausible duct gives, a quarter of the nominal",
    "rig.safety.supervisors:PressureModelCheck",
)
_STUCK = _c(
    SUP,
    "plausibility: the same reading (within half a count) for 50 ms while the pump runs is a "
    "frozen sensor (sensor_stuck)",
    "rig.safety.supervisors:StuckSensorCheck",
)
_RANGE = _c(
    SUP,
    "plausibility: a reading at a rail code or outside the transducer's span (open or shorted "
    "bridge) for 3 samples stops the pump, whether or not it runs (pressure_range)",
    "rig.safety.supervisors:PressureRangeCheck",
)
_SAMPLE_GAP = _c(
    SUP,
    "plausibility: more than 10 samples lost in a row, or more than 2 % of a 1 s window (a "
    "failing cable or a stalled board), stops the pump, whether or not it runs (sample_gap)",
    "rig.safety.supervisors:SampleGapCheck",
)
_DISPENSED_VOLUME = _c(
    SUP,
    "plausibility: the pump's own dispensed count vs the volume the host commanded, polled at "
    "about 4 Hz (StopSupervisor.on_dispensed), 20 uL or 5 % for 500 ms: while the pump runs a "
    "runaway or a stall trips (plausibility); after a stop the pump's power is cut",
    "rig.safety.supervisors:DispensedVolumeCheck",
)
_SELF_TEST = _c(
    SUP,
    "self-test, run by the daemon at start (and after a reset while it has not passed): both "
    "devices reachable; the pump's safe-mode timeout made to fire (alarm T seen); the board's "
    "watchdog made to trip (relay open and a watchdog trip latched within its timeout); the "
    "pressure zero within fluid.pressure_zero_tolerance_mmhg with the pump unpowered, then "
    "zeroed; re-arm. Fluid is refused until it passes (fluid commands need READY or ACTIVE, "
    "rig.safety.rules); a failure latches a fault",
    "rig.safety.selftest:SelfTest.run",
)
_STATES = _c(
    LOCK,
    "system state machine: FAULT and ESTOP are states, reachable from every state and left only "
    "by an operator's reset, which leads to READY (or OFFLINE), never back to ACTIVE; ESTOP "
    "outranks FAULT; an illegal transition raises",
    "rig.safety.states:StateMachine",
)
_FLUID_RULES = _c(
    LOCK,
    "rule table: every fluid command (prime, irrigate, pressure, bolus) is allowed only in READY "
    "or ACTIVE and the pump's power is restored only outside FAULT and ESTOP, so nothing moves "
    "fluid while a fault or e-stop is latched, a device is offline, or before the self-test "
    "passed; every refusal is recorded with its reason",
    "rig.safety.rules:RULES",
)

HAZARDS: tuple[Hazard, ...] = (
    Hazard(
        "H01",
        "over-pressure / duct perforation",
        (
            "the line pressure passes the duct's tolerance (salivary-duct analogue: dilation "
            "above about 30 mmHg) because the flow is too high for the outflow",
            "a setpoint law overshoots (pressure hold) or does not back off (irrigation)",
        ),
        "duct wall rupture, extravasation of saline or contrast into breast tissue, pain, "
        "infection; the procedure is abandoned",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "hard ceiling in every mode: P >= limits.max_pressure_mmhg stops (pressure_limit)",
                "rig.fluid.supervision:StopSupervisor._limit_stop",
            ),
            _c(
                SUP,
                "irrigation backs off linearly towards the irrigation cap; the pressure law is a "
                "PI with anti-windup under the cap",
                "rig.fluid.controller:FluidController.target_flow_ml_min",
            ),
            _c(
                SUP,
                "after a stop and an operator's reset, pressure still trapped in an occluded duct "
                "is a latched fault once the line has had time to drain (rest_zero), so fluid is "
                "not added on top of it",
                "rig.safety.supervisors:RestZeroCheck",
            ),
            _TRIP,
            _STOP_FRAME,
            _BOARD_CUTOFF,
        ),
    ),
    Hazard(
        "H02",
        "forcing against resistance (tip against the wall)",
        (
            "the scope tip meets the duct wall or enters a branch too narrow for it while the "
            "pump keeps its flow",
        ),
        "duct wall injury or perforation at the tip",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "hydraulic resistance R = P / Q, lag-corrected for the line's compliance",
                "rig.fluid.resistance:ResistanceEstimator",
            ),
            _c(
                SUP,
                "resistance limit and resistance rise-rate stops (resistance_limit, "
                "resistance_rise), each persistent over 2 samples",
                "rig.fluid.supervision:StopSupervisor._limit_stop",
            ),
            _TRIP,
            _STOP_FRAME,
            _BOARD_RESISTANCE_STOP,
        ),
    ),
    Hazard(
        "H03",
        "unintended bolus after a stop",
        (
            "the old setpoint resumes after a fault reset",
            "a start sequence carries on to RUN after a fault latched mid-sequence",
            "pressure stored in the compliant line is released into the duct after an "
            "occlusion stop",
        ),
        "over-distension of the duct, pain, perforation if the tip is against the wall",
        Severity.SERIOUS,
        (
            _LATCH,
            _STATES,
            _FLUID_RULES,
            _c(
                LOCK,
                "a reset leaves the rig stopped at zero flow: only a new command moves fluid",
                "rig.fluid.controller:FluidController.reset",
            ),
            _c(
                SUP,
                "a pressure stop is followed by a relief withdraw of what the line holds above "
                "limits.relief_target_mmhg, capped at limits.relief_withdraw_ul (on by default: "
                "post-release bolus at most 2.7 uL over the envelope)",
                "rig.fluid.controller:FluidController.relief_volume_ul",
            ),
            _c(
                LOCK,
                "the interlock is the only path to an actuator: the daemon and the self-test hold "
                "the devices only through link handles with no actuator method, and a source "
                "check proves no other module names one",
                "rig.safety.links:PumpLink",
            ),
        ),
    ),
    Hazard(
        "H04",
        "over-volume of saline",
        ("irrigation runs on longer than intended (operator distracted, no stop)",),
        "duct and tissue distension, extravasation, pain",
        Severity.MINOR,
        (
            _c(
                SUP,
                "cumulative saline volume cap (the larger of host integral and pump count) "
                "stops and latches (saline_volume_cap)",
                "rig.fluid.supervision:StopSupervisor._volume_stop",
            ),
        ),
    ),
    Hazard(
        "H05",
        "over-volume of contrast",
        (
            "repeated boluses add up past the amount ductography needs (about 1-2 mL)",
            "one bolus asks for more than is left under the cap",
        ),
        "contrast extravasation, pain, a repeat or abandoned procedure",
        Severity.SERIOUS,
        (
            _c(
                LOCK,
                "a bolus that would pass the cumulative contrast cap is refused",
                "rig.fluid.controller:FluidController.bolus",
            ),
            _c(
                SUP,
                "the contrast count is cumulative over the session and stops at the cap "
                "(contrast_volume_cap)",
                "rig.fluid.supervision:StopSupervisor._volume_stop",
            ),
        ),
    ),
    Hazard(
        "H06",
        "air in the line",
        ("the line is not primed before the cannula enters the duct", "the syringe runs dry"),
        "air bubbles mimic intraductal lesions on ductography (misdiagnosis) and obscure the "
        "view; air forced into tissue",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "prime procedure: the profile's prime volume at the prime rate; sets `primed`",
                "rig.fluid.controller:FluidController.prime",
            ),
            _c(
                LOCK,
                "primed-line rule: fluid.irrigate, fluid.hold_pressure and fluid.bolus require "
                "`line_primed` and are refused (recorded) until the line is primed; fluid.prime "
                "itself does not",
                "rig.safety.rules:RULES",
            ),
        ),
    ),
    Hazard(
        "H07",
        "runaway pump that ignores stop",
        ("pump firmware or motor driver fault: STP acknowledged but the motor keeps turning",),
        "uncontrolled infusion: over-pressure, perforation",
        Severity.SERIOUS,
        (
            _c(
                DEV,
                "the pump's power relay on the I/O board, opened by the interlock, the board's "
                "watchdog and its cut-off",
                "drivers.ioboard.driver:IoBoard.open_pump_relay_nowait",
            ),
            _BOARD_CUTOFF,
            _c(
                SUP,
                "runaway check: if the pump still reports infusing 100 ms after its stop, or its "
                "dispensed count keeps growing past the commanded volume after a stop, another "
                "STP is no use: its power relay is opened (pump_did_not_stop)",
                "rig.fluid.supervision:StopSupervisor.on_dispensed",
            ),
            _c(
                LOCK,
                "the power cut: opens the pump's power relay without awaiting the link and "
                "latches the fault",
                "rig.safety.interlock:Interlock.cut_pump_power",
            ),
            _c(
                LOCK,
                "the pump's power comes back only after an operator's reset: pump.power_on is "
                "refused in FAULT and ESTOP (rule table)",
                "rig.safety.rules:RULES",
            ),
            _DISPENSED_VOLUME,
            _SELF_TEST,
        ),
    ),
    Hazard(
        "H08",
        "host crash (daemon killed)",
        ("the daemon process dies (SIGKILL, crash, OOM) while fluid moves", "SIGTERM"),
        "infusion continues with nobody supervising: over-pressure, over-volume",
        Severity.SERIOUS,
        (
            _BOARD_WATCHDOG,
            _HEARTBEAT,
            _PUMP_SAFE_MODE,
            _c(
                LOCK,
                "SIGTERM/SIGINT stop the pump in the signal handler, then shut down in order",
                "rig.daemon:RigDaemon.request_shutdown",
            ),
            _c(
                LOCK,
                "fault containment: an unexpected exception in a device or control task does not "
                "end the daemon; it latches internal_fault (fluid stopped, exception reported) and "
                "the task restarts with back-off",
                "rig.safety.containment:contain",
            ),
            _c(
                SUP,
                "an exception while a pressure sample is handled stops the pump and latches "
                "internal_fault; the sample does not count as fresh",
                "rig.fluid.controller:FluidController.on_sample",
            ),
            _SELF_TEST,
        ),
    ),
    Hazard(
        "H09",
        "host hang (event loop stalled)",
        ("a blocking call or a busy loop stalls the daemon's event loop while fluid moves",),
        "stops are not acted on in time: over-pressure, perforation",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "loop-stall guard: a thread watches a beat the event loop updates every 5 ms; "
                "when the loop has not turned for fluid.loop_stall_timeout_ms (100 ms) it writes "
                "the pump's STP frame itself",
                "rig.safety.stall_guard:LoopStallGuard",
            ),
            _c(
                SUP,
                "where the event loop runs real-time (SCHED_FIFO, drivers/realtime.py), the "
                "guard's thread runs one priority above it: a loop spinning at real-time "
                "priority cannot hold off its own watcher",
                "drivers.realtime:join_control_loop",
            ),
            _c(
                DEV,
                "the STP frame the guard writes straight to the serial fd, without the event loop",
                "drivers.ne1000.driver:Ne1000Pump.stop_from_thread",
            ),
            _c(
                LOCK,
                "when the loop turns again the stall becomes a latched fault (loop_stall) if fluid "
                "was moving; at rest it is recorded (`loop_stalled_at_rest`) and latches nothing "
                "(a nuisance stop, H24)",
                "rig.daemon:RigDaemon._on_loop_stall",
            ),
            _BOARD_WATCHDOG,
            _HEARTBEAT,
            _PUMP_SAFE_MODE,
            _SELF_TEST,
        ),
    ),
    Hazard(
        "H10",
        "loss of the pump link",
        ("cable pulled, USB-serial adapter reset, pump silent",),
        "the pump runs on its last command and the host cannot stop it",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "pump link supervision: a lost link while fluid moves latches pump_link_lost",
                "rig.devices.pump:PumpDevice.on_lost",
            ),
            _c(
                SUP,
                "a pump that does not answer a poll stops the run (pump_link_lost)",
                "rig.fluid.controller:FluidController.actuate_once",
            ),
            _RELAY_FALLBACK,
            _c(
                DEV,
                "the relay open the fallback sends, written without awaiting the link",
                "drivers.ioboard.driver:IoBoard.open_pump_relay_nowait",
            ),
            _PUMP_SAFE_MODE,
            _SELF_TEST,
        ),
    ),
    Hazard(
        "H11",
        "loss of the I/O board link",
        ("cable pulled, board reset, board silent",),
        "the rig is blind (no pressure) and has no power relay: over-pressure goes unseen",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "board link supervision: a lost link while fluid moves latches board_link_lost",
                "rig.devices.board:BoardDevice.on_lost",
            ),
            _STALE,
            _SAMPLE_GAP,
            _PLAUSIBILITY,
            _c(
                LOCK,
                "motion is refused while the board is not connected",
                "rig.safety.interlock:Interlock.infuse",
            ),
            _BOARD_WATCHDOG,
            _SELF_TEST,
        ),
    ),
    Hazard(
        "H12",
        "pressure sensor stuck",
        ("transducer or amplifier fault freezes the reading while samples keep coming",),
        "over-pressure and wall contact go unseen: perforation",
        Severity.SERIOUS,
        (_STUCK, _PRESSURE_MODEL, _PLAUSIBILITY),
    ),
    Hazard(
        "H13",
        "pressure sensor drifting",
        (
            "offset drift of the transducer over the procedure (temperature, zero not taken)",
            "the transducer's span never measured or measured wrong: the board reads pressure "
            "on a scale nobody checked",
        ),
        "limits are applied to a wrong pressure: over-pressure unseen, or false stops",
        Severity.SERIOUS,
        (
            _c(
                DEV,
                "the board's scale is the /calibration.py on its flash, measured against a "
                "reference pressure by `rig firmware calibrate` (which refuses a noisy average and "
                "a span outside 4.5..5.5 uV/V/mmHg); without a valid one (missing, malformed, out "
                "of bounds) the board reports its transducer at the positive rail: its cut-off "
                "latches and the host refuses fluid (a sensor fault)",
                "firmware.main:build",
            ),
            _c(
                SUP,
                "self-test pressure zero: at start, line at rest and pump unpowered, the reading "
                "must be within fluid.pressure_zero_tolerance_mmhg, else the self-test fails and "
                "fluid stays refused; then the board is zeroed (an offset present at start)",
                "rig.safety.selftest:SelfTest._pressure_zero",
            ),
            _c(
                SUP,
                "plausibility: a sudden offset shift while the pump runs makes the pressure "
                "disagree with the line model (pressure_model)",
                "rig.safety.supervisors:PressureModelCheck",
            ),
            _c(
                SUP,
                "rest zero: at every rest (pump stopped, line settled for 10 time constants) the "
                "0.5 s mean reading must be within fluid.pressure_zero_tolerance_mmhg of the "
                "self-test's zero for longer than 1 s, else a latched fault; this catches drift "
                "accumulated during a run at the next stop (rest_zero). Residual risk: drift "
                "within one continuous run is seen only when that run stops (the pressure model "
                "learns slow drift as a change of resistance)",
                "rig.safety.supervisors:RestZeroCheck",
            ),
            _PLAUSIBILITY,
        ),
    ),
    Hazard(
        "H14",
        "pressure sensor disconnected",
        ("transducer cable off the board: the reading sits at a rail or at zero",),
        "the rig is blind while samples keep coming: over-pressure unseen",
        Severity.SERIOUS,
        (
            _RANGE,
            _PRESSURE_MODEL,
            _PLAUSIBILITY,
            _c(
                DEV,
                "an open bridge reads the positive rail, above any cut-off: the board opens the "
                "pump relay by itself (fail-safe; in the firmware, "
                "firmware/board.py Board.sample, which the simulator runs)",
                "drivers.ioboard.driver:IoBoard.set_cutoff",
            ),
        ),
    ),
    Hazard(
        "H15",
        "stuck foot pedal",
        ("bad contact or debris holds the infusion pedal down",),
        "infusion continues after the surgeon lifted the foot",
        Severity.SERIOUS,
        (
            _c(
                LOCK,
                "the irrigate pedal is a dead-man: every release (let go, stuck, unplugged, a "
                "failed read) asks the dispatcher for a stop, which is never refused; only a "
                "new press (an edge) starts irrigation, so a pedal held through a stop, a fault "
                "or a reset starts nothing",
                "rig.devices.pedal:PedalDevice.handle",
            ),
            _c(
                SUP,
                "a press longer than devices.pedal.stuck_after_s (120 s) is a stuck pedal: it "
                "counts as released until really let go, and if fluid was moving the rig "
                "latches a pedal_stuck fault",
                "drivers.pedal.tracker:PedalTracker.poll",
            ),
        ),
    ),
    Hazard(
        "H16",
        "e-stop",
        ("the e-stop is pressed and the fluid must stop regardless of the host's state",),
        "if the e-stop does not stop the fluid: any harm the operator meant to prevent",
        Severity.SERIOUS,
        (
            _c(
                DEV,
                "the board's hardware e-stop opens the pump relay by itself (the firmware, "
                "firmware/board.py Board.sample, which the simulator runs)",
                "drivers.sim.ioboard_device:IoBoardDevice.press_estop",
            ),
            _c(
                LOCK,
                "e-stop: synchronous (awaits nothing), every emergency handler runs even if one "
                "fails (the pump's STP and its power relay), idempotent, latched as state ESTOP "
                "until an operator's reset",
                "rig.safety.interlock:Interlock.estop",
            ),
            _c(
                LOCK,
                "the basket's halt (its Tic's halt and hold) is one of the e-stop's handlers: "
                "the basket stops and holds what it has",
                "rig.safety.interlock:Interlock.estop",
            ),
            _c(
                LOCK,
                "the board's ESTOP_PRESSED event (its button) calls the e-stop",
                "rig.devices.board:BoardDevice._handle_event",
            ),
            _c(
                LOCK,
                'any client may e-stop: {"op": "estop"} calls the e-stop and answers with the '
                "state",
                "rig.api.dispatch:CommandDispatcher.handle",
            ),
            _STATES,
            _FLUID_RULES,
            _c(
                LOCK,
                "a trip during a start sequence prevents RUN",
                "rig.safety.interlock:Interlock.infuse",
            ),
        ),
    ),
    Hazard(
        "H17",
        "basket closing with excess force",
        ("basket motor driven past the grip force (Tic stepper, position control)",),
        "duct wall trauma, a torn lesion",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "grasp detection: while closing, a position error (position - encoder, the "
                "grip's force proxy) past devices.basket.grasp_error_usteps halts the stage "
                "where it stands and the basket holds (captured); a grasp at the force limit "
                "(force_limit_usteps) is recorded as such",
                "rig.devices.basket_machine:BasketMachine.on_reading",
            ),
            _c(
                DEV,
                "the close's leash: the Tic is never sent further than force_limit_usteps past "
                "the encoder's last reading, so a host late to read the status (a stalled loop, "
                "a slow bus) leaves the stage stopped at the force limit by the Tic itself",
                "rig.devices.basket_machine:BasketMachine.leashed",
            ),
            _c(
                DEV,
                "the Tic's command timeout, armed at connect and fed by the heartbeat: a silent "
                "host and the Tic decelerates to hold (emulated in TicModel._step)",
                "drivers.tic.driver:TicStepper.configure_command_timeout",
            ),
        ),
    ),
    Hazard(
        "H18",
        "basket releasing a captured lesion during a fault",
        (
            "a fault stop zeroes every actuator, the basket included",
            "a recovery resumes the basket's last move or re-homes it through open",
        ),
        "the lesion is lost in the duct: a repeat retrieval",
        Severity.MINOR,
        (
            _c(
                LOCK,
                "a latched fault halts a moving basket where it is (halt and hold, never open) "
                "and the basket's moves are refused in FAULT and ESTOP",
                "rig.safety.interlock:Interlock.trip",
            ),
            _c(
                SUP,
                "the basket's FAULT state keeps what it holds; the reset brings it back to "
                "captured without moving it, and nothing opens it but a new basket.open",
                "rig.devices.basket_machine:BasketMachine.recovered",
            ),
        ),
    ),
    Hazard(
        "H19",
        "loss of video during infusion",
        ("camera unplugged, capture process dies, frames stall",),
        "the surgeon infuses blind: wall contact and perforation not seen",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "no frame for devices.camera.video_loss_stop_ms while irrigating, holding "
                "pressure or in a bolus stops the fluid and latches video_lost (priming, outside "
                "the duct, goes on)",
                "rig.devices.camera:CameraDevice._stop_infusing_blind",
            ),
            _c(
                LOCK,
                "irrigation, pressure hold and bolus need video not lost (the rule table's "
                "VIDEO_NOT_LOST requirement); with a camera configured, video counts as lost "
                "until its first frames",
                "rig.safety.rules:RULES",
            ),
            _c(
                EVIDENCE,
                "the stop's cause and figures, the HIGH alarm of a latched stop, the camera "
                "event and the MEDIUM `video` alarm until frames return",
                "rig.alarms.conditions:conditions_of",
            ),
        ),
    ),
    Hazard(
        "H20",
        "wrong configuration or units",
        (
            "a profile with a limit out of its clinical range, a misspelt key silently "
            "ignored, a value in the wrong unit or type",
            "a command with a value in the wrong type or unit",
        ),
        "the rig's limits are not the ones intended: over-pressure, over-volume",
        Severity.SERIOUS,
        (
            _c(
                LOCK,
                "hard bounds per field with their clinical source; unknown keys and wrong "
                "types are errors, never coerced; units are part of every name",
                "rig.config:FIELD_BOUNDS",
            ),
            _c(
                LOCK,
                "cross-field checks (cap below ceiling, board cut-off above the host limit, "
                "watchdog longer than two heartbeats)",
                "rig.config:LimitsConfig",
            ),
            _c(
                LOCK,
                "profile validation reports every problem with its dotted path",
                "rig.config:validate_profile",
            ),
            _c(
                LOCK,
                "strict command parsing: no coercion (true is not a flow), finite numbers only",
                "rig.api.commands:parse_command",
            ),
        ),
    ),
    Hazard(
        "H21",
        "unauthorised command",
        (
            "a client without the right (anonymous, observer, wrong password) sends a command",
            "a surgeon's client asks for an engineer's op",
            "a logged-in user connects with the daemon's or the simulator's client id and takes "
            "its session over",
            "a requester steers the reply onto the state, events or telemetry, or onto another "
            "role's command topic, where the daemon would execute its own reply",
            "an oversized request stalls the event loop (and with it every host-side stop)",
            "a retained command is stored by the broker and runs on every daemon start",
            "a subverted camera process (it decodes a network camera's stream) uses its broker "
            "login to send a command or forge the rig's state",
        ),
        "fluid moves without the surgeon's intent",
        Severity.SERIOUS,
        (
            _c(
                LOCK,
                "the broker: per-user passwords, no anonymous clients, and an ACL that lets each "
                "role publish only on its own command topic (an observer on none); the camera "
                "process has a login of its own that may only publish the video view",
                "rig.api.roles:broker_acl",
            ),
            _c(
                LOCK,
                "the daemon: the role is known from the topic a request came in on, and an op "
                "outside the role's table is denied and recorded",
                "rig.api.commands:role_may",
            ),
            _c(
                LOCK,
                "control of the rig: while a station (the surgeon's console) has control, no "
                "other station can move the fluid or reset a fault until it takes control over "
                "explicitly, which is recorded; stops are never refused",
                "rig.api.control:ControlOwnership.refusal",
            ),
            _c(
                LOCK,
                "whoever sends it, a command runs only if the rule table allows it in the current "
                "state (nothing moves while latched, offline or untested)",
                "rig.safety.rules:RULES",
            ),
            _c(
                LOCK,
                "client ids end in 128 random bits, new per connection, and nothing grants $SYS: "
                "no one can name another's session to take it over",
                "drivers.transport.mqtt:unguessable_client_id",
            ),
            _c(
                LOCK,
                "replies go only to reply/<client id>; a request naming any other response topic "
                "is refused unexecuted and recorded; the daemon's own login cannot write a "
                "command topic",
                "drivers.transport.mqtt:is_reply_topic",
            ),
            _c(
                LOCK,
                "size limits: the broker cuts off a sender of a packet over 256 KiB; a responder "
                "refuses a request over 16 KiB before parsing it; error echoes are bounded",
                "rig.broker:PrivateBroker.start",
            ),
            _c(
                LOCK,
                "retained requests: never handed to a new subscriber (retain handling 2), and a "
                "live one is refused (Mosquitto cannot refuse retain per topic)",
                "drivers.transport.mqtt:MqttEndpoint.serve",
            ),
            _c(
                Layer.EVIDENCE,
                "audit: every command is recorded with its role, client, op and result, on the "
                "events topic and in the log; a command without a response topic is refused "
                "(stops excepted) and recorded",
                "rig.api.dispatch:CommandDispatcher.handle",
            ),
        ),
    ),
    Hazard(
        "H22",
        "leak or perforation during infusion",
        ("a perforation or a loose connection opens a second outflow while the pump runs",),
        "saline or contrast infused into tissue; a perforation not noticed",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "leak/perforation stop: R falls below a fraction of the R this run settled to, "
                "for 100 ms, flow steady (leak_or_perforation)",
                "rig.fluid.supervision:StopSupervisor._limit_stop",
            ),
            _c(
                SUP,
                "the settled resistance that is the leak check's yardstick",
                "rig.fluid.supervision:LeakReference",
            ),
            _c(
                SUP,
                "plausibility: a line that comes off at the pump connector (saline pours out "
                "before the duct) makes the pressure fall below the line model (pressure_model)",
                "rig.safety.supervisors:PressureModelCheck",
            ),
            _PLAUSIBILITY,
            _TRIP,
        ),
    ),
    Hazard(
        "H23",
        "loss of the operators' channel (the MQTT broker)",
        (
            "the broker stops, restarts or becomes unreachable mid-procedure",
            "the daemon's broker session is taken over or dropped",
        ),
        "fluid moves that no one can see or stop from the console; the procedure's record "
        "has a gap",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "API supervision: the broker connection is a supervised subsystem; its loss while "
                "fluid moves stops the pump and latches api_lost, and it reconnects with back-off "
                "while the devices and the fluid loop run on",
                "rig.api.service:ApiService.supervise",
            ),
            _TRIP,
            _c(
                Layer.EVIDENCE,
                "events recorded while the broker is away are in the journal on disk and are "
                "published from it once the broker is back, with the state and the latched fault "
                "(api_lost ... api_restored)",
                "rig.api.service:ApiService._publish_events",
            ),
        ),
    ),
    Hazard(
        "H24",
        "nuisance stop on a healthy duct (alarm fatigue)",
        (
            "at low flow pressure / flow carries the sensor noise divided by the flow, and a "
            "supervisor judges that noise as a wall",
            "a flow change, a mode change or a restart leaves a transient the supervision reads "
            "as a fault",
        ),
        "surgeons learn to ignore, bypass or widen the stops (The Joint Commission Sentinel "
        "Event Alert 50), so a real wall is forced; the procedure is interrupted and prolonged",
        Severity.SERIOUS,
        (
            _c(
                SUP,
                "the resistance-rise window is sized for the present flow from the transducer's "
                "noise (fluid.pressure_noise_mmhg), so the rise estimate's noise stays a sixth "
                "of its limit at every flow; the rise is not judged while the pump runs ahead of "
                "the line (a start, a step up), and the line's lag takes its time constant at "
                "the measured resistance, so a tight duct draining after a cut of the flow is "
                "not read as a wall",
                "rig.fluid.resistance:ResistanceEstimator.half_window_samples",
            ),
            _c(
                LOCK,
                "no bolus slower than the flow at which resistance can be watched "
                "(limits.min_flow_for_resistance_ml_min)",
                "rig.fluid.controller:FluidController.bolus",
            ),
            _c(
                EVIDENCE,
                "the envelope benchmark: every flow, pressure setpoint, bolus rate, flow change, "
                "mode change and restart on the simulator, counting false stops and timing wall "
                "and occlusion detection on the same grid (rig bench envelope)",
                "rig.bench.envelope:run_envelope",
            ),
        ),
    ),
    Hazard(
        "H25",
        "basket closed out of sight",
        (
            "basket.close asked with the video lost or frozen: the camera unplugged, its "
            "capture process killed or hung, or its stream stalled, while the console still "
            "shows the last frame",
            "basket.close during a fault",
        ),
        "the basket closes on the duct wall instead of the lesion: wall trauma",
        Severity.SERIOUS,
        (
            _c(
                LOCK,
                "basket.close (and basket.open) needs live video and a rig in ready or active "
                "(no fault): the rule table's VIDEO_LIVE requirement",
                "rig.safety.rules:RULES",
            ),
            _c(
                SUP,
                "video_live follows the camera's health: false once no frame has arrived for "
                "devices.camera.video_timeout_ms (an unplug, a dead stream, a killed camera "
                "process), true again only with fresh frames; unknown without a camera",
                "rig.devices.camera:CameraDevice.on_lost",
            ),
            _c(
                EVIDENCE,
                "loss of video is a camera event and the MEDIUM `video` alarm until frames return",
                "rig.alarms.conditions:conditions_of",
            ),
        ),
    ),
)

HAZARD_IDS: frozenset[str] = frozenset(h.id for h in HAZARDS)
BY_ID: dict[str, Hazard] = {h.id: h for h in HAZARDS}


def hazard(hazard_id: str) -> Hazard:
    """The hazard with this id; KeyError naming the known ids if there is none."""
    try:
        return BY_ID[hazard_id]
    except KeyError:
        raise KeyError(
            f"unknown hazard id {hazard_id!r} (known: H01..H{len(HAZARDS):02d})"
        ) from None
