"""Every event the daemon records is one of these typed models, told apart by `kind`.

An event is what happened, in the words the API has always published: each model serialises to
the same JSON object the events topic carried before there were models (`rig watch`, the tests
and the stop-latency benchmark read those field names), plus three stamps the journal adds:
`seq` (its place in the journal, rising by one across restarts), `t_us` (the daemon's monotonic
clock) and `wall_time` (seconds since the epoch, for the record).

The record issue adds procedure and snapshot events here: one model per kind, added to
`Event`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rig.fluid.events import Figure, StopCause, StopEvent
from rig.safety.selftest import CheckResult
from rig.safety.states import RigState, Transition


class EventBase(BaseModel):
    # NaN and infinity are allowed (published as null): a stop whose figure is NaN must still be
    # recorded, never refused by its own model.
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = 0
    """The journal's sequence number; 0 until the journal has taken the event."""
    t_us: int = 0
    """The daemon's monotonic clock when the event was recorded, in microseconds."""
    wall_time: float = 0.0
    """Seconds since the epoch when the event was recorded."""
    kind: str
    """Which event this is; each model narrows it to its own literal."""

    def as_json(self) -> dict[str, Any]:
        """The JSON object published and journaled (NaN and infinity become null, as in the
        journal's text: the two never differ)."""
        parsed: dict[str, Any] = json.loads(self.model_dump_json())
        return parsed


# -- the interlock ----------------------------------------------------------------------------


class StateChanged(EventBase):
    """The interlock's state machine moved (rig/safety/states.py)."""

    kind: Literal["transition"] = "transition"
    from_state: RigState
    to_state: RigState
    cause: str

    @classmethod
    def of(cls, transition: Transition) -> StateChanged:
        return cls(
            from_state=transition.from_state, to_state=transition.to_state, cause=transition.cause
        )


class Stopped(EventBase):
    """The fluid was stopped: by an operator, at a bolus's end, or by a fault (latched)."""

    kind: Literal["stop"] = "stop"
    cause: StopCause
    message: str
    mode: str
    figures: dict[str, Figure] = Field(default_factory=dict)
    trigger_sample_t_us: int | None = None
    stop_tx_done_us: int | None = None
    latched: bool
    detection_to_stop_ms: float | None = None

    @classmethod
    def of(cls, event: StopEvent) -> Stopped:
        return cls(
            cause=event.cause,
            message=event.message,
            mode=event.mode,
            figures=event.figures,
            trigger_sample_t_us=event.trigger_sample_t_us,
            stop_tx_done_us=event.stop_tx_done_us,
            latched=event.latched,
            detection_to_stop_ms=event.detection_to_stop_ms,
        )


class FaultReset(EventBase):
    """An operator reset the rig; `cleared` is the latched cause it cleared, if any."""

    kind: Literal["reset"] = "reset"
    cleared: StopCause | None


class SelfTestCompleted(EventBase):
    kind: Literal["self_test"] = "self_test"
    passed: bool
    checks: list[CheckResult]


class SelfTestWatchdogTrip(EventBase):
    """The board's watchdog tripped because the self-test fell silent on purpose."""

    kind: Literal["self_test_watchdog_trip"] = "self_test_watchdog_trip"
    board_t_us: int


# -- commands ---------------------------------------------------------------------------------


class CommandAudit(EventBase):
    """A command that got past parsing, with who asked and how it ended (`status` excepted)."""

    kind: Literal["command"] = "command"
    op: str
    fields: dict[str, Any] = Field(default_factory=dict)
    """The command's own fields (a flow, a volume, a note): validated, so small and finite."""
    role: str
    client: str | None
    ok: bool
    error: str | None = None
    """The error code when `ok` is false."""
    message: str | None = None


class CommandDenied(EventBase):
    """A command the role, the interlock's rules or the I/O board refused."""

    kind: Literal["command_denied"] = "command_denied"
    op: str
    reason: str
    role: str | None = None
    state: RigState | None = None
    """The rig's state when the interlock refused it."""


class CommandRejected(EventBase):
    """A command that did not parse, or whose values the fluid controller refused."""

    kind: Literal["command_rejected"] = "command_rejected"
    reason: str
    op: str | None = None
    role: str | None = None
    client: str | None = None


class RequestRefused(EventBase):
    """A request the API endpoint refused before it became a command (size, rate, topic)."""

    kind: Literal["request_refused"] = "request_refused"
    role: str
    client: str | None
    code: str
    reason: str


# -- devices and subsystems -------------------------------------------------------------------


class ControlChanged(EventBase):
    """A station took or gave up control of the rig (rig/api/control.py)."""

    kind: Literal["control_changed"] = "control_changed"
    previous: str | None
    """The station (role) that had control, if any."""
    holder: str | None
    """The station that has it now, if any."""
    client: str | None
    forced: bool
    """Taken over from another station."""


class DeviceLinkChanged(EventBase):
    """A device's link came up or went down (its supervisor says which)."""

    kind: Literal["device_link"] = "device_link"
    device: str
    up: bool
    detail: str = ""


class CameraChanged(EventBase):
    """The scope's video became live (frames arriving within devices.camera.video_timeout_ms)
    or was lost; `video_live` in the interlock's facts follows it."""

    kind: Literal["camera"] = "camera"
    live: bool
    detail: str = ""


class PumpPoweredUp(EventBase):
    """The pump reported a power-up at connect while no fluid moved: expected, not a fault."""

    kind: Literal["pump_powered_up"] = "pump_powered_up"
    alarm: str


class PumpSelfTestSilence(EventBase):
    """The pump reported the self-test's deliberate silence (its safe-mode timeout)."""

    kind: Literal["pump_self_test_silence"] = "pump_self_test_silence"
    alarm: str


class PedalChanged(EventBase):
    """The foot pedal: a press, a release (with its cause), a quick tap, a stuck pedal and its
    clearing, an unplug (drivers/pedal/tracker.py)."""

    kind: Literal["pedal"] = "pedal"
    change: Literal["pressed", "released", "tapped", "stuck", "stuck_cleared", "unplugged"]
    pedal: str | None = None
    cause: str | None = None
    """A release's cause: released, stuck or unplugged."""
    held_s: float | None = None


class BasketChanged(EventBase):
    """The basket moved from one state to another (rig/devices/basket_machine.py): a move
    started, arrived, a grasp (captured, with its position error), a fault's halt, recovery."""

    kind: Literal["basket"] = "basket"
    from_state: str
    to_state: str
    cause: str
    position_usteps: int | None = None
    encoder_usteps: int | None = None
    error_usteps: int | None = None
    """The grasp's force proxy: position - encoder."""
    at_force_limit: bool = False
    holds_lesion: bool = False


class LoopStalledAtRest(EventBase):
    """The event loop stalled past its limit while no fluid moved: recorded, not latched."""

    kind: Literal["loop_stalled_at_rest"] = "loop_stalled_at_rest"
    stall_ms: float
    limit_ms: float


class ApiLost(EventBase):
    kind: Literal["api_lost"] = "api_lost"
    reason: str


class ApiRestored(EventBase):
    kind: Literal["api_restored"] = "api_restored"
    down_s: float


class JournalFault(EventBase):
    """The journal could not be written: events reach the API but are no longer durable."""

    kind: Literal["journal_fault"] = "journal_fault"
    reason: str


# -- the procedure record (rig/record/) -------------------------------------------------------


class DaemonStarted(EventBase):
    """The daemon started (the first event of each run): in a record, a restart after a crash
    shows here, and the events before it were all the journal held when the old run ended."""

    kind: Literal["daemon_started"] = "daemon_started"
    rig_id: str
    opened_at_seq: int
    """The journal's last sequence number before this run."""


class ProcedureStarted(EventBase):
    """A procedure began: everything journaled until its `procedure_stopped` belongs to it.
    No patient-identifying data: `ref` is a pseudonymous reference, if the surgeon gave one."""

    kind: Literal["procedure_started"] = "procedure_started"
    procedure: str
    rig_id: str
    ref: str | None
    role: str
    client: str | None
    syringe_ml: float
    syringe_diameter_mm: float
    syringe_lot: str | None
    primed: bool
    """Whether the line was primed when the procedure began (a later prime is its own command
    in the record)."""


class ProcedureResumed(EventBase):
    """The daemon restarted while a procedure was open: it goes on (a crash does not end it)."""

    kind: Literal["procedure_resumed"] = "procedure_resumed"
    procedure: str


class ProcedureStopped(EventBase):
    kind: Literal["procedure_stopped"] = "procedure_stopped"
    procedure: str
    role: str
    client: str | None
    saline_ml: float
    contrast_ml: float


class TrendSample(EventBase):
    """The fluid path's figures, downsampled for the record's trends (during a procedure)."""

    kind: Literal["trend"] = "trend"
    procedure: str
    pressure_mmhg: float | None
    flow_ml_min: float
    resistance_mmhg_min_per_ml: float | None
    saline_ml: float
    contrast_ml: float
    mode: str


class SnapshotTaken(EventBase):
    """A still from the scope, saved with its note (the "empty duct" after a retrieval)."""

    kind: Literal["snapshot"] = "snapshot"
    procedure: str | None
    path: str
    """The PNG, relative to the record directory."""
    note: str
    pressure_mmhg: float | None
    flow_ml_min: float
    saline_ml: float
    contrast_ml: float


class VideoSegment(EventBase):
    """A closed video segment of the recording, with its frame-timestamp sidecar."""

    kind: Literal["video_segment"] = "video_segment"
    procedure: str | None
    path: str
    """Relative to the record directory."""
    frames: int
    duration_s: float


class StorageFault(EventBase):
    """The record directory cannot take the record (full, unwritable): an alarm. The safety
    functions go on; new procedures are refused until it clears."""

    kind: Literal["storage_fault"] = "storage_fault"
    reason: str
    free_mb: float | None


class StorageRestored(EventBase):
    kind: Literal["storage_restored"] = "storage_restored"
    free_mb: float


# -- alarms (rig/alarms/) ----------------------------------------------------------------------


class AlarmRaised(EventBase):
    kind: Literal["alarm_raised"] = "alarm_raised"
    alarm: str
    """The condition's id: `fault`, `link.<device>`, `journal`, `storage`."""
    priority: Literal["high", "medium", "low"]
    message: str


class AlarmAcknowledged(EventBase):
    """Someone silenced the alarm; its visual signal stays while the condition lasts."""

    kind: Literal["alarm_acknowledged"] = "alarm_acknowledged"
    alarm: str
    role: str
    client: str | None
    audio_paused_s: float


class AlarmCleared(EventBase):
    kind: Literal["alarm_cleared"] = "alarm_cleared"
    alarm: str
    active_s: float


Event = Annotated[
    StateChanged
    | Stopped
    | FaultReset
    | SelfTestCompleted
    | SelfTestWatchdogTrip
    | CommandAudit
    | CommandDenied
    | CommandRejected
    | RequestRefused
    | ControlChanged
    | DeviceLinkChanged
    | CameraChanged
    | PumpPoweredUp
    | PumpSelfTestSilence
    | PedalChanged
    | BasketChanged
    | LoopStalledAtRest
    | ApiLost
    | ApiRestored
    | JournalFault
    | DaemonStarted
    | ProcedureStarted
    | ProcedureResumed
    | ProcedureStopped
    | TrendSample
    | SnapshotTaken
    | VideoSegment
    | StorageFault
    | StorageRestored
    | AlarmRaised
    | AlarmAcknowledged
    | AlarmCleared,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: dict[str, Any] | str | bytes) -> Event:
    """An event from its JSON object (or text); a pydantic ValidationError names what is wrong,
    an unknown `kind` included."""
    if isinstance(data, dict):
        return EVENTS.validate_python(data)
    return EVENTS.validate_json(data)
