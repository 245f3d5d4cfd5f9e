"""The one command dispatcher: a request from a role becomes an interlock-checked action.

Free of any transport: the MQTT API (rig/api/service.py) calls it today; the foot pedal and the
console will call the same `handle`. A request is parsed (rig/api/commands.py, where every op is
defined once with the roles that may ask and whether it needs control), held to the role's ops,
held to control of the rig (rig/api/control.py: the station in control, if any, is the only one
that may move fluid or reset), executed through the fluid controller and the interlock, and
audited: every request but a status read is a `command` event with role, client, op and result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.clock import Clock
from drivers.transport.mqtt import JsonObject, bounded
from rig.alarms.register import UnknownAlarmError
from rig.api.commands import (
    AcknowledgeAlarm,
    BasketClose,
    BasketHalt,
    BasketHome,
    BasketOpen,
    BasketRetract,
    Bolus,
    CameraRecord,
    CameraSnapshot,
    Command,
    CommandError,
    EmergencyStop,
    HoldPressure,
    Irrigate,
    PedalReport,
    Prime,
    ReleaseControl,
    ResetFault,
    RunSelfTest,
    SimulateLoopHang,
    StartProcedure,
    Status,
    Stop,
    StopProcedure,
    TakeControl,
    parse_command,
    role_may,
)
from rig.api.control import ControlConflictError, ControlOwnership, Handover
from rig.api.roles import Role
from rig.devices.basket_machine import BasketConflictError, BasketUnavailableError
from rig.devices.basket_machine import Op as BasketOp
from rig.devices.contract import ForwardingError
from rig.events.models import CommandAudit, CommandDenied, CommandRejected, EventBase
from rig.fluid.controller import CommandRejectedError, FluidController, StateConflictError
from rig.fluid.events import StopEvent
from rig.record.procedures import OpenProcedure, ProcedureError
from rig.safety.interlock import ActuatorRefusedError, Interlock, InterlockDeniedError
from rig.safety.selftest import SelfTestReport

log = logging.getLogger(__name__)

UNAUDITED = frozenset({"status", "pedal.report"})
"""Streams that would drown the trail: a status read (polled at 20 Hz) changes nothing, and a
forwarded pedal's heartbeat is recorded by what it changes (its presses and releases, and the
requests they make, audited as the pedal's)."""

RUN_WITHOUT_REPLY = frozenset({"fluid.stop", "estop"})
"""Ops run even when nobody can be told the outcome: they can only make the rig safer."""


@dataclass
class RigOperations:
    """What the dispatcher acts on, besides the fluid controller and the interlock."""

    run_self_test: Callable[[], Awaitable[SelfTestReport]]
    reset: Callable[[], Awaitable[StopEvent | None]]
    state: Callable[[], JsonObject]
    record: Callable[[EventBase], EventBase]
    """Record an event; returns it as the journal stamped it (its `seq`)."""
    journaled: Callable[[int], Awaitable[bool]]
    """Wait until the event with that `seq` is on disk (bounded); False if it is not."""
    state_changed: Callable[[], None]
    simulator: bool
    """A simulator profile: the debug ops exist."""
    forward: Callable[[str, Role, object], JsonObject]
    """A station forwards the state of a device plugged into its console (the registry's)."""
    start_procedure: Callable[[str | None, str | None, Role, str | None], Awaitable[OpenProcedure]]
    """(ref, syringe lot, role, client): open a procedure, or raise ProcedureError."""
    stop_procedure: Callable[[Role, str | None], str]
    """(role, client): close the open procedure and return its id, or raise ProcedureError."""
    acknowledge_alarm: Callable[[str | None, Role, str | None], list[str]]
    """(alarm or None for all, role, client): the ids silenced, or raise UnknownAlarmError."""
    basket: Callable[[BasketOp], Awaitable[JsonObject]]
    """Move the basket (open, close, retract): its state after the command; raises
    BasketConflictError (not from here), InterlockDeniedError (the rules), BasketUnavailable."""
    snapshot: Callable[[str], Awaitable[JsonObject]]
    """(note): a still saved in the record; its reply (rig/devices/camera.py)."""
    record_video: Callable[[bool], Awaitable[JsonObject]]
    """(start): recording started or stopped; its reply."""


class CommandDispatcher:
    def __init__(
        self,
        controller: FluidController,
        interlock: Interlock,
        rig: RigOperations,
        clock: Clock,
    ) -> None:
        self._controller = controller
        self._interlock = interlock
        self._rig = rig
        self.control = ControlOwnership(clock)

    async def handle(self, payload: bytes, *, role: Role, client: str | None) -> JsonObject:
        """One request from `role`, sent by `client` (None: nobody can be answered)."""
        try:
            command = parse_command(payload)
        except CommandError as exc:
            self._rig.record(CommandRejected(role=role.value, client=client, reason=str(exc)))
            return {"ok": False, "error": {"code": exc.code, "message": str(exc)}}
        if client is None and command.op not in RUN_WITHOUT_REPLY:
            # Nobody could be told the outcome: refuse it. A stop is the exception, because
            # refusing a stop is never the safe side (a pedal or button may fire and forget).
            reply: JsonObject = {
                "ok": False,
                "error": {
                    "code": "no_response_topic",
                    "message": f"{command.op} refused: a request needs a ResponseTopic "
                    f"(reply/<client id>); only {', '.join(sorted(RUN_WITHOUT_REPLY))} run "
                    "without one",
                },
            }
        else:
            try:
                reply = await self._execute(command, role, client)
            except Exception as exc:
                # The endpoint answers `internal`; the trail must show it too.
                self._audit(command, role, client, {"code": "internal", "message": repr(exc)})
                raise
        failed = None if reply.get("ok") else reply.get("error") or {"code": "failed"}
        audit = self._audit(command, role, client, failed)
        # What is acknowledged is durable: the answer waits for the journal to hold the command
        # and everything recorded before it (its effects: the transitions, the stop). The
        # command has acted already; only its answer waits.
        if audit is not None:
            # `seq`: where the journal holds this command, for a client that keeps count.
            reply = {**reply, "seq": audit.seq}
            if not await self._rig.journaled(audit.seq):
                reply["journaled"] = False
        return reply

    def _audit(
        self, command: Command, role: Role, client: str | None, error: JsonObject | None
    ) -> EventBase | None:
        if command.op in UNAUDITED:
            return None
        return self._rig.record(
            CommandAudit(
                op=command.op,
                fields=command.model_dump(mode="json", exclude={"op"}),
                role=role.value,
                client=client,
                ok=error is None,
                error=None if error is None else error.get("code"),
                message=bounded(str(error["message"]), 1000)
                if error is not None and error.get("message") is not None
                else None,
            )
        )

    async def _execute(self, command: Command, role: Role, client: str | None) -> JsonObject:
        if not role_may(role, command.op):
            reason = f"{command.op} refused: the {role} role may not request it"
            self._rig.record(CommandDenied(op=command.op, role=role.value, reason=reason))
            return {"ok": False, "error": {"code": "denied", "message": reason}}
        not_in_control = command.needs_control and self.control.refusal(role, command.op)
        if not_in_control:
            self._rig.record(CommandDenied(op=command.op, role=role.value, reason=not_in_control))
            return {"ok": False, "error": {"code": "not_in_control", "message": not_in_control}}
        controller = self._controller
        try:
            match command:
                case Irrigate(flow_ml_min=flow):
                    controller.irrigate(flow)
                case HoldPressure(pressure_mmhg=pressure):
                    controller.hold_pressure(pressure)
                case Bolus(volume_ml=volume, rate_ml_min=rate):
                    controller.bolus(volume, rate)
                case Prime():
                    controller.prime()
                case Stop():
                    controller.stop()
                case EmergencyStop(source=source):
                    event = self._interlock.estop(
                        f"client ({source})", mode=controller.setpoint.mode
                    )
                    return {
                        "ok": True,
                        "result": {"state": self._interlock.state.value, "stop": event.as_dict()},
                    }
                case SimulateLoopHang(seconds=seconds):
                    if not self._rig.simulator:
                        return {
                            "ok": False,
                            "error": {
                                "code": "denied",
                                "message": "debug.hang exists only on a simulator profile",
                            },
                        }
                    # Deliberately block the event loop, as a hung library call would.
                    threading.Event().wait(seconds)
                    return {"ok": True, "result": {"hung_s": seconds}}
                case RunSelfTest():
                    report = await self._rig.run_self_test()
                    return {
                        "ok": report.passed,
                        "result": report.as_dict(),
                        **(
                            {}
                            if report.passed
                            else {
                                "error": {"code": "self_test_failed", "message": report.summary()}
                            }
                        ),
                    }
                case ResetFault():
                    cleared = await self._rig.reset()
                    return {
                        "ok": True,
                        "result": {"cleared": None if cleared is None else cleared.as_dict()},
                    }
                case Status():
                    return {"ok": True, "result": self._rig.state()}
                case TakeControl(force=force):
                    try:
                        handover = self.control.take(role, client, force=force)
                    except ControlConflictError as exc:
                        return {
                            "ok": False,
                            "error": {"code": "not_in_control", "message": exc.message},
                        }
                    return self._control_changed(handover)
                case ReleaseControl():
                    return self._control_changed(self.control.release(role, client))
                case PedalReport():
                    try:
                        return self._rig.forward(command.device, role, command)
                    except ForwardingError as exc:
                        return {"ok": False, "error": {"code": "denied", "message": str(exc)}}
                case StartProcedure(ref=ref, syringe_lot=lot):
                    opened = await self._rig.start_procedure(ref, lot, role, client)
                    self._rig.state_changed()
                    return {"ok": True, "result": {"procedure": opened.as_dict()}}
                case AcknowledgeAlarm(alarm=alarm):
                    try:
                        silenced = self._rig.acknowledge_alarm(alarm, role, client)
                    except UnknownAlarmError as exc:
                        return {"ok": False, "error": {"code": "not_found", "message": str(exc)}}
                    self._rig.state_changed()
                    return {"ok": True, "result": {"acknowledged": silenced}}
                case BasketOpen() | BasketClose() | BasketRetract() | BasketHome() | BasketHalt():
                    op: BasketOp = command.op.removeprefix("basket.")  # type: ignore[assignment]
                    try:
                        basket = await self._rig.basket(op)
                    except BasketConflictError as exc:
                        return {
                            "ok": False,
                            "error": {"code": "state_conflict", "message": str(exc)},
                        }
                    except BasketUnavailableError as exc:
                        return {"ok": False, "error": {"code": "unavailable", "message": str(exc)}}
                    self._rig.state_changed()
                    return {"ok": True, "result": {"basket": basket}}
                case CameraSnapshot(note=note):
                    return await self._rig.snapshot(note)
                case CameraRecord(recording=recording):
                    reply = await self._rig.record_video(recording == "start")
                    self._rig.state_changed()
                    return reply
                case StopProcedure():
                    closed = self._rig.stop_procedure(role, client)
                    self._rig.state_changed()
                    return {"ok": True, "result": {"procedure": closed}}
        except ProcedureError as exc:
            return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
        except CommandRejectedError as exc:
            self._rig.record(CommandRejected(op=command.op, role=role.value, reason=str(exc)))
            code = "state_conflict" if isinstance(exc, StateConflictError) else "out_of_range"
            return {"ok": False, "error": {"code": code, "message": str(exc)}}
        except ActuatorRefusedError as exc:
            # The rules allowed it and the device refused: recorded here, as the interlock's own
            # refusals are by its denial listener.
            self._rig.record(CommandDenied(op=command.op, role=role.value, reason=exc.reason))
            return {"ok": False, "error": {"code": "denied", "message": exc.reason}}
        except InterlockDeniedError as exc:
            return {"ok": False, "error": {"code": "denied", "message": exc.reason}}
        self._rig.state_changed()
        return {"ok": True, "result": {"mode": controller.setpoint.mode.value}}

    def _control_changed(self, handover: Handover | None) -> JsonObject:
        if handover is not None:
            self._rig.record(handover.as_event())
            self._rig.state_changed()
        return {"ok": True, "result": {"control": self.control.as_dict()}}
