"""The command language of the daemon's API: every op defined once, validated at the edge.

A command is a JSON object with an `op` and that op's fields, nothing else. Every number is
finite and carries its unit in its name; range checks against the profile's limits happen in
the controller, which knows them, and come back as error replies just the same.

Each op's model says, next to its fields, who may ask (`roles`), which interlock action it runs
as (`action`: the rule in rig/safety/rules.py that decides whether it may run now) and whether
the asking station must hold control of the rig (`needs_control`, rig/api/control.py). The role
table, the dispatcher and the API docs all read these; nothing else lists ops.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Annotated, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from drivers.transport.mqtt import bounded
from rig.api.roles import COMMANDING_ROLES, Role
from rig.record.procedures import REF_PATTERN
from rig.safety.rules import Action

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


_COMMANDING = frozenset(COMMANDING_ROLES)
_EVERYONE = frozenset(Role)


class _Command(BaseModel):
    model_config = _STRICT

    roles: ClassVar[frozenset[Role]] = _COMMANDING
    action: ClassVar[Action | None] = None
    needs_control: ClassVar[bool] = False
    """Only the station in control may ask (stops never need it: refusing one is never safe)."""


class Irrigate(_Command):
    action = Action.IRRIGATE
    needs_control = True
    op: Literal["fluid.irrigate"]
    flow_ml_min: float = Field(gt=0)


class HoldPressure(_Command):
    action = Action.HOLD_PRESSURE
    needs_control = True
    op: Literal["fluid.hold_pressure"]
    pressure_mmhg: float = Field(gt=0)


class Bolus(_Command):
    action = Action.BOLUS
    needs_control = True
    op: Literal["fluid.bolus"]
    volume_ml: float = Field(gt=0)
    rate_ml_min: float = Field(gt=0)


class Prime(_Command):
    action = Action.PRIME
    needs_control = True
    op: Literal["fluid.prime"]


class Stop(_Command):
    op: Literal["fluid.stop"]


class EmergencyStop(_Command):
    """Everything stops at once and latches; any authorised client may send it."""

    op: Literal["estop"]
    source: str = Field(default="unnamed client", min_length=1, max_length=64)


class RunSelfTest(_Command):
    roles = frozenset({Role.ENGINEER})
    action = Action.SELF_TEST
    needs_control = True
    op: Literal["selftest.run"]


class SimulateLoopHang(_Command):
    """Simulator profiles only: block the daemon's event loop, to prove the loop-stall guard."""

    roles = frozenset({Role.ENGINEER})
    op: Literal["debug.hang"]
    seconds: float = Field(gt=0, le=5)


class ResetFault(_Command):
    needs_control = True
    op: Literal["fault.reset"]


class Status(_Command):
    roles = _EVERYONE
    op: Literal["status"]


class TakeControl(_Command):
    """This station takes control of the rig; from another station only with `force`, and the
    handover is recorded."""

    op: Literal["control.take"]
    force: bool = False


class ReleaseControl(_Command):
    """This station gives up control: any commanding station may then command the rig."""

    op: Literal["control.release"]


class PedalReport(_Command):
    """The state of a foot pedal plugged into a console (`devices.pedal.port = { console = ...
    }`), forwarded by that console on every change and as a heartbeat: a stream that falls
    silent counts as released. Needs no control: a release must always get through (the
    irrigation a press asks for is a request of its own, held to control as any other)."""

    device: ClassVar[str] = "pedal"
    op: Literal["pedal.report"]
    pressed: list[Literal["left", "middle", "right"]] = Field(max_length=3)
    seq: int = Field(ge=0, lt=2**32)
    """Rises by one with each report of a stream; a report not above the last is a
    duplicate or came out of order, and is dropped."""


class _BasketCommand(_Command):
    """The basket (rig/devices/basket.py): the surgeon and the engineer move it; the station in
    control only, as for the fluid."""

    roles = frozenset({Role.SURGEON, Role.ENGINEER})
    needs_control = True


class BasketOpen(_BasketCommand):
    """Deploy the basket open (from retracted, closed, or captured: the surgeon's release)."""

    action = Action.BASKET_OPEN
    op: Literal["basket.open"]


class BasketClose(_BasketCommand):
    """Close the open basket; on something it holds there and reports `captured`. Needs live
    video and no fault."""

    action = Action.BASKET_CLOSE
    op: Literal["basket.close"]


class BasketRetract(_BasketCommand):
    """Draw the basket back into the channel (with what it holds)."""

    action = Action.BASKET_RETRACT
    op: Literal["basket.retract"]


class BasketHome(_BasketCommand):
    """Home the basket against its reverse switch (into the channel, with what it holds): what
    makes an unknown position (`unhomed`) known. Never done by the rig on its own."""

    action = Action.BASKET_HOME
    op: Literal["basket.home"]


class BasketHalt(_Command):
    """Halt the basket where it is; it holds what it has. A stop: never needs control, never
    refused for the rig's state (the basket pedal's release asks it)."""

    op: Literal["basket.halt"]


class StartProcedure(_Command):
    """Open a procedure: everything until `procedure.stop` is its record (rig/record/). `ref`
    is a pseudonymous reference, never a name: letters, digits and `._-` only."""

    needs_control = True
    op: Literal["procedure.start"]
    ref: str | None = Field(default=None, pattern=REF_PATTERN)
    syringe_lot: str | None = Field(default=None, pattern=REF_PATTERN)


class StopProcedure(_Command):
    needs_control = True
    op: Literal["procedure.stop"]


class AcknowledgeAlarm(_Command):
    """Silence an alarm (every active one without `alarm`) for a bounded time; its visual
    signal stays while its condition lasts (rig/alarms/register.py). Needs no control: any
    station at the patient may silence an alarm."""

    op: Literal["alarm.ack"]
    alarm: str | None = Field(default=None, min_length=1, max_length=64)


_NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"


class CameraSnapshot(_Command):
    """A still of the scope's view with what the rig reads now and a note ("empty duct"),
    saved in the record (rig/devices/camera.py). Moves nothing: needs no control."""

    op: Literal["camera.snapshot"]
    note: str = Field(default="", max_length=500, pattern=_NO_CONTROL_CHARACTERS)


class CameraRecord(_Command):
    """Start or stop recording the scope's video to segments in the record."""

    op: Literal["camera.record"]
    recording: Literal["start", "stop"]


Command = Annotated[
    Irrigate
    | HoldPressure
    | Bolus
    | Prime
    | Stop
    | EmergencyStop
    | ResetFault
    | RunSelfTest
    | SimulateLoopHang
    | Status
    | TakeControl
    | ReleaseControl
    | PedalReport
    | BasketOpen
    | BasketClose
    | BasketRetract
    | BasketHome
    | BasketHalt
    | StartProcedure
    | StopProcedure
    | AcknowledgeAlarm
    | CameraSnapshot
    | CameraRecord,
    Field(discriminator="op"),
]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)

COMMANDS: Final[tuple[type[_Command], ...]] = typing.get_args(typing.get_args(Command)[0])
"""Every command model, in the order above."""


def op_of(model: type[_Command]) -> str:
    """The wire name of a command model's op."""
    (op,) = typing.get_args(model.model_fields["op"].annotation)
    return str(op)


OPS: Final[Mapping[str, type[_Command]]] = {op_of(model): model for model in COMMANDS}
"""Every op by its wire name."""

ROLE_OPS: Final[Mapping[Role, frozenset[str]]] = {
    role: frozenset(op for op, model in OPS.items() if role in model.roles) for role in Role
}


def role_may(role: Role, op: str) -> bool:
    model = OPS.get(op)
    return model is not None and role in model.roles


class CommandError(ValueError):
    """A request that is not a valid command; `code` is machine-readable, str() is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


MAX_PROBLEMS_SHOWN = 5
"""An error message names this many problems at most: its size never grows with the input."""


def parse_command(payload: bytes) -> Command:
    """Bytes from the wire to a typed command, or a CommandError that says what was wrong.

    The message quotes each offending value cut to 60 characters, and at most
    MAX_PROBLEMS_SHOWN of them: a reply never echoes a large input back."""
    try:
        return _ADAPTER.validate_json(payload)
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        for error in errors[:MAX_PROBLEMS_SHOWN]:
            where = bounded(".".join(str(part) for part in error["loc"]) or "(command)", 60)
            given = error.get("input")
            shown = "" if isinstance(given, dict) else f" = {bounded(repr(given), 60)}"
            problems.append(f"{where}{shown}: {bounded(error['msg'], 200)}")
        if len(errors) > MAX_PROBLEMS_SHOWN:
            problems.append(f"and {len(errors) - MAX_PROBLEMS_SHOWN} more problems")
        raise CommandError("invalid", "; ".join(problems)) from None
