"""Why the saline stopped: every stop is one of these, with its figures."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class StopCause(StrEnum):
    # Ordinary ends: they do not latch.
    OPERATOR = "operator"
    COMPLETED = "completed"
    SHUTDOWN = "shutdown"
    # Supervision: these latch until an operator resets them.
    RESISTANCE_LIMIT = "resistance_limit"
    RESISTANCE_RISE = "resistance_rise"
    PRESSURE_LIMIT = "pressure_limit"
    BOLUS_PRESSURE_CAP = "bolus_pressure_cap"
    LEAK_OR_PERFORATION = "leak_or_perforation"
    SALINE_VOLUME_CAP = "saline_volume_cap"
    CONTRAST_VOLUME_CAP = "contrast_volume_cap"
    PRESSURE_DATA_STALE = "pressure_data_stale"
    PUMP_ALARM = "pump_alarm"
    PUMP_LINK_LOST = "pump_link_lost"
    BOARD_LINK_LOST = "board_link_lost"
    BOARD_TRIP = "board_trip"
    BOARD_RESISTANCE_STOP = "board_resistance_stop"
    """The I/O board's own resistance stop opened the pump relay (firmware/board.py)."""
    ESTOP = "estop"
    LOOP_STALL = "loop_stall"
    PLAUSIBILITY = "plausibility"
    PUMP_DID_NOT_STOP = "pump_did_not_stop"
    SELF_TEST_FAILED = "self_test_failed"
    INTERNAL_FAULT = "internal_fault"
    """An unexpected exception in the daemon's own code (docs/safety/fault-containment.md)."""
    API_LOST = "api_lost"
    """The broker connection (the operators' channel) was lost while fluid moved."""
    PEDAL_STUCK = "pedal_stuck"
    """The dead-man pedal held longer than any irrigation step needs (a bad contact)."""
    VIDEO_LOST = "video_lost"
    """The scope's video was lost while saline or contrast flowed into the duct (H19)."""

    @property
    def latches(self) -> bool:
        return self not in _NON_LATCHING

    @property
    def in_plain_words(self) -> str:
        """What stopped the fluid, for a surgeon or a report (not a code)."""
        return _PLAIN_WORDS[self]


_NON_LATCHING = frozenset({StopCause.OPERATOR, StopCause.COMPLETED, StopCause.SHUTDOWN})

_PLAIN_WORDS: dict[StopCause, str] = {
    StopCause.OPERATOR: "stopped by the operator",
    StopCause.COMPLETED: "the step completed",
    StopCause.SHUTDOWN: "the rig shut down",
    StopCause.RESISTANCE_LIMIT: "the duct's resistance passed its limit (scope tip against the wall?)",
    StopCause.RESISTANCE_RISE: "the duct's resistance rose too fast (scope tip against the wall?)",
    StopCause.PRESSURE_LIMIT: "the pressure passed its limit",
    StopCause.BOLUS_PRESSURE_CAP: "the contrast bolus reached its pressure cap",
    StopCause.LEAK_OR_PERFORATION: "pressure fell at a steady flow (leak or perforation?)",
    StopCause.SALINE_VOLUME_CAP: "the saline volume cap was reached",
    StopCause.CONTRAST_VOLUME_CAP: "the contrast volume cap was reached",
    StopCause.PRESSURE_DATA_STALE: "the pressure readings stopped arriving",
    StopCause.PUMP_ALARM: "the pump raised an alarm",
    StopCause.PUMP_LINK_LOST: "the pump's link was lost",
    StopCause.BOARD_LINK_LOST: "the I/O board's link was lost",
    StopCause.BOARD_TRIP: "the I/O board cut the pump's power",
    StopCause.BOARD_RESISTANCE_STOP: (
        "the I/O board cut the pump's power: the duct's resistance passed the board's own "
        "limit (scope tip against the wall?)"
    ),
    StopCause.ESTOP: "emergency stop",
    StopCause.LOOP_STALL: "the control loop stalled",
    StopCause.PLAUSIBILITY: "the pressure readings were implausible (transducer fault?)",
    StopCause.PUMP_DID_NOT_STOP: "the pump did not confirm its stop",
    StopCause.SELF_TEST_FAILED: "the self-test failed",
    StopCause.INTERNAL_FAULT: "an internal fault of the control software",
    StopCause.API_LOST: "the operators' channel (the broker) was lost",
    StopCause.PEDAL_STUCK: "the foot pedal was held down too long (stuck?)",
    StopCause.VIDEO_LOST: "the scope's video was lost while fluid flowed into the duct",
}

Figure = float | int | str | bool | None


@dataclass(frozen=True)
class StopEvent:
    cause: StopCause
    message: str
    mode: str
    """The fluid mode that was running when the stop happened."""
    figures: dict[str, Figure] = field(default_factory=dict)
    trigger_sample_t_us: int | None = None
    """Board timestamp of the first sample over the limit (None when no sample triggered it)."""
    stop_tx_done_us: int | None = None
    """Host clock time the last byte of the pump's stop command left the host."""
    wall_time: float = field(default_factory=time.time)

    @property
    def latched(self) -> bool:
        return self.cause.latches

    @property
    def detection_to_stop_ms(self) -> float | None:
        if self.trigger_sample_t_us is None or self.stop_tx_done_us is None:
            return None
        return (self.stop_tx_done_us - self.trigger_sample_t_us) / 1000.0

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["cause"] = str(self.cause)
        data["latched"] = self.latched
        data["detection_to_stop_ms"] = self.detection_to_stop_ms
        return data
