"""What a procedure's report says, built from its events alone (no I/O, no plotting).

The renderers (rig/report/render.py) draw this; a test reads it. Times are seconds from the
procedure's start, by the daemon's wall clock (the monotonic clock restarts with the daemon).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rig.events.models import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmRaised,
    BasketChanged,
    CameraChanged,
    CommandAudit,
    CommandDenied,
    CommandRejected,
    ControlChanged,
    DaemonStarted,
    DeviceLinkChanged,
    EventBase,
    FaultReset,
    JournalFault,
    PedalChanged,
    ProcedureResumed,
    ProcedureStarted,
    ProcedureStopped,
    SelfTestCompleted,
    SnapshotTaken,
    StateChanged,
    Stopped,
    StorageFault,
    StorageRestored,
    TrendSample,
    VideoSegment,
)

BASKET_MOVES = frozenset({"opening", "closing", "retracting", "homing"})
"""The basket's states on its way. The plots mark a grasp (captured) and a fault's halt of a
move; a fault that finds the basket at rest halts nothing, and the timeline has every change."""

SILENT_KINDS = frozenset({"trend", "transition", "request_refused"})
"""Kinds the timeline leaves out: trends are the plots; state transitions and refused requests
repeat what the commands and stops already say (they stay in the journal and the archive)."""


@dataclass(frozen=True)
class Series:
    t_s: list[float] = field(default_factory=list)
    pressure_mmhg: list[float] = field(default_factory=list)
    """NaN where the pressure was unknown."""
    flow_ml_min: list[float] = field(default_factory=list)
    resistance_mmhg_min_per_ml: list[float] = field(default_factory=list)
    saline_ml: list[float] = field(default_factory=list)
    contrast_ml: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Mark:
    """A moment to mark on the plots and list in the timeline."""

    t_s: float
    label: str
    detail: str
    latched: bool = False
    figures: dict[str, float] = field(default_factory=dict)
    """A stop's own figures (pressure_mmhg, flow_ml_min, resistance_mmhg_min_per_ml), finite
    ones only: the plots show them at the stop, where the trend's 2 Hz samples may miss the
    rise that caused it."""


@dataclass
class AlarmSpan:
    """One alarm: when it was raised, acknowledged (first) and cleared, from its events."""

    t_s: float
    alarm: str
    priority: str
    message: str
    acknowledged_t_s: float | None = None
    acknowledged_by: str | None = None
    cleared_t_s: float | None = None


@dataclass(frozen=True)
class TimelineRow:
    t_s: float
    wall_time: float
    kind: str
    text: str


@dataclass(frozen=True)
class Snapshot:
    t_s: float
    path: str
    note: str
    figures: str


@dataclass(frozen=True)
class Report:
    procedure: str
    ref: str | None
    rig_id: str
    started_wall_time: float
    stopped_wall_time: float | None
    duration_s: float
    saline_ml: float
    contrast_ml: float
    max_pressure_mmhg: float | None
    syringe: str
    series: Series
    stops: list[Mark]
    resets: list[Mark]
    basket: list[Mark]
    """The basket's grasps (captured, with its force proxy) and its faults' halts."""
    alarms: list[AlarmSpan]
    timeline: list[TimelineRow]
    snapshots: list[Snapshot]
    video_segments: list[str]
    restarts: int
    """How often the daemon restarted during the procedure (a crash, a power cut)."""

    @property
    def open(self) -> bool:
        return self.stopped_wall_time is None


def build_report(events: Sequence[EventBase]) -> Report:
    """The report of one procedure: `events` from its procedure_started on."""
    if not events or not isinstance(events[0], ProcedureStarted):
        raise ValueError("a procedure's events begin with its procedure_started")
    started = events[0]
    t0 = started.wall_time
    series = Series()
    stops: list[Mark] = []
    resets: list[Mark] = []
    basket: list[Mark] = []
    alarms: list[AlarmSpan] = []
    open_alarms: dict[str, AlarmSpan] = {}
    timeline: list[TimelineRow] = []
    snapshots: list[Snapshot] = []
    segments: list[str] = []
    stopped: ProcedureStopped | None = None
    restarts = 0
    peaks: list[float] = []
    for event in events:
        t_s = event.wall_time - t0
        match event:
            case TrendSample():
                series.t_s.append(t_s)
                series.pressure_mmhg.append(_nan(event.pressure_mmhg))
                series.flow_ml_min.append(event.flow_ml_min)
                series.resistance_mmhg_min_per_ml.append(_nan(event.resistance_mmhg_min_per_ml))
                series.saline_ml.append(event.saline_ml)
                series.contrast_ml.append(event.contrast_ml)
                if event.pressure_mmhg is not None:
                    peaks.append(event.pressure_mmhg)
            case Stopped():
                figures = {
                    key: float(value)
                    for key, value in event.figures.items()
                    if isinstance(value, int | float) and math.isfinite(value)
                }
                stops.append(Mark(t_s, event.cause.value, describe(event), event.latched, figures))
                if "pressure_mmhg" in figures:
                    peaks.append(figures["pressure_mmhg"])
            case FaultReset():
                resets.append(Mark(t_s, "reset", describe(event)))
            case BasketChanged() if event.to_state == "captured" or (
                event.to_state == "fault" and event.from_state in BASKET_MOVES
            ):
                label = (
                    "basket at force limit" if event.at_force_limit else f"basket {event.to_state}"
                )
                basket.append(Mark(t_s, label, describe(event), latched=event.to_state == "fault"))
            case AlarmRaised():
                span = AlarmSpan(t_s, event.alarm, event.priority, event.message)
                alarms.append(span)
                open_alarms[event.alarm] = span
            case AlarmAcknowledged():
                acked = open_alarms.get(event.alarm)
                if acked is not None and acked.acknowledged_t_s is None:
                    acked.acknowledged_t_s, acked.acknowledged_by = t_s, event.role
            case AlarmCleared():
                cleared = open_alarms.pop(event.alarm, None)
                if cleared is not None:
                    cleared.cleared_t_s = t_s
            case SnapshotTaken():
                snapshots.append(Snapshot(t_s, event.path, event.note, _snapshot_figures(event)))
            case VideoSegment():
                segments.append(event.path)
            case DaemonStarted():
                restarts += 1
            case ProcedureStopped():
                stopped = event
            case _:
                pass
        if event.kind not in SILENT_KINDS:
            timeline.append(TimelineRow(t_s, event.wall_time, event.kind, describe(event)))
    end_wall = stopped.wall_time if stopped is not None else events[-1].wall_time
    saline, contrast = _volumes(stopped, series)
    return Report(
        procedure=started.procedure,
        ref=started.ref,
        rig_id=started.rig_id,
        started_wall_time=t0,
        stopped_wall_time=None if stopped is None else stopped.wall_time,
        duration_s=end_wall - t0,
        saline_ml=saline,
        contrast_ml=contrast,
        max_pressure_mmhg=max(peaks) if peaks else None,
        syringe=f"{started.syringe_ml:g} mL, {started.syringe_diameter_mm:g} mm bore, lot "
        f"{started.syringe_lot or 'not given'}, line {'primed' if started.primed else 'not primed'}"
        " at the start",
        series=series,
        stops=stops,
        resets=resets,
        basket=basket,
        alarms=alarms,
        timeline=timeline,
        snapshots=snapshots,
        video_segments=segments,
        restarts=restarts,
    )


def describe(event: EventBase) -> str:
    """One event in plain words, for the timeline."""
    match event:
        case ProcedureStarted():
            ref = f" (ref {event.ref})" if event.ref else ""
            return f"procedure started{ref} by the {event.role}"
        case ProcedureStopped():
            return (
                f"procedure stopped by the {event.role}: {event.saline_ml:.2f} mL saline, "
                f"{event.contrast_ml:.2f} mL contrast"
            )
        case ProcedureResumed():
            return "the procedure goes on after the daemon restarted"
        case DaemonStarted():
            return f"the control daemon started (rig {event.rig_id})"
        case Stopped():
            head = event.cause.in_plain_words
            figures = _figures(event)
            latched = "; latched until reset" if event.latched else ""
            return f"fluid stopped: {head}{figures}{latched}"
        case FaultReset():
            cleared = "nothing latched" if event.cleared is None else event.cleared.value
            return f"fault reset ({cleared})"
        case CommandAudit():
            result = "done" if event.ok else f"refused: {event.error}"
            fields = ", ".join(f"{k} {v}" for k, v in event.fields.items() if v is not None)
            shown = f" ({fields})" if fields else ""
            return (
                f"{event.op}{shown} by the {event.role} ({event.client or 'no client'}): {result}"
            )
        case CommandDenied():
            return f"{event.op} denied: {event.reason}"
        case CommandRejected():
            return f"{event.op or 'a command'} rejected: {event.reason}"
        case SelfTestCompleted():
            return f"self-test {'passed' if event.passed else 'FAILED'}"
        case DeviceLinkChanged():
            state = "up" if event.up else "down"
            detail = f" ({event.detail})" if event.detail else ""
            return f"{event.device} link {state}{detail}"
        case ControlChanged():
            return f"control: {event.previous or 'nobody'} -> {event.holder or 'nobody'}" + (
                " (taken over)" if event.forced else ""
            )
        case PedalChanged():
            return f"pedal {event.pedal or ''} {event.change}".replace("  ", " ")
        case SnapshotTaken():
            return f"snapshot \u201c{event.note}\u201d ({_snapshot_figures(event)})"
        case BasketChanged():
            return _basket_text(event)
        case CameraChanged():
            detail = f" ({event.detail})" if event.detail else ""
            return f"video {'live' if event.live else 'LOST'}{detail}"
        case VideoSegment():
            return f"video segment {event.path}: {event.frames} frames, {event.duration_s:.1f} s"
        case AlarmRaised():
            return f"ALARM {event.priority.upper()} ({event.alarm}): {event.message}"
        case AlarmAcknowledged():
            return f"alarm {event.alarm} acknowledged by the {event.role}: audio paused"
        case AlarmCleared():
            return f"alarm {event.alarm} cleared after {event.active_s:.1f} s"
        case StorageFault():
            return f"storage: {event.reason}"
        case StorageRestored():
            return f"storage restored ({event.free_mb:.0f} MB free)"
        case JournalFault():
            return f"journal: {event.reason}"
        case StateChanged():
            return f"{event.from_state.value} -> {event.to_state.value} ({event.cause})"
    return event.kind.replace("_", " ")


def wall_clock(wall_time: float) -> str:
    return datetime.datetime.fromtimestamp(wall_time).isoformat(sep=" ", timespec="seconds")


def _figures(event: Stopped) -> str:
    shown = []
    for key in ("pressure_mmhg", "flow_ml_min", "resistance_mmhg_min_per_ml"):
        value = event.figures.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            shown.append(f"{key.split('_')[0]} {value:.3g} {_unit(key)}")
    return f" ({', '.join(shown)})" if shown else ""


def _unit(key: str) -> str:
    return {"pressure_mmhg": "mmHg", "flow_ml_min": "mL/min"}.get(key, "mmHg·min/mL")


def _basket_text(event: BasketChanged) -> str:
    where = "" if event.position_usteps is None else f" at {event.position_usteps} usteps"
    text = f"basket {event.from_state} -> {event.to_state}{where}: {event.cause}"
    if event.holds_lesion:
        text += "; holds the lesion"
    if event.at_force_limit:
        text += "; closed at the force limit"
    return text


def _snapshot_figures(event: SnapshotTaken) -> str:
    pressure = "-" if event.pressure_mmhg is None else f"{event.pressure_mmhg:.1f}"
    return (
        f"{pressure} mmHg, {event.flow_ml_min:.2f} mL/min, {event.saline_ml:.2f} mL saline, "
        f"{event.contrast_ml:.2f} mL contrast"
    )


def _volumes(stopped: ProcedureStopped | None, series: Series) -> tuple[float, float]:
    if stopped is not None:
        return stopped.saline_ml, stopped.contrast_ml
    if series.t_s:
        return series.saline_ml[-1], series.contrast_ml[-1]
    return 0.0, 0.0


def _nan(value: float | None) -> float:
    return math.nan if value is None else value
