"""The command language of the daemon's API, validated by pydantic at the edge.

A command is a JSON object with an `op` and that op's fields, nothing else. Every number is
finite and carries its unit in its name; range checks against the profile's limits happen in
the controller, which knows them, and come back as error replies just the same.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from drivers.transport.mqtt import bounded

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class _Command(BaseModel):
    model_config = _STRICT


class Irrigate(_Command):
    op: Literal["fluid.irrigate"]
    flow_ml_min: float = Field(gt=0)


class HoldPressure(_Command):
    op: Literal["fluid.pressure"]
    pressure_mmhg: float = Field(gt=0)


class Bolus(_Command):
    op: Literal["fluid.bolus"]
    volume_ml: float = Field(gt=0)
    rate_ml_min: float = Field(gt=0)


class Prime(_Command):
    op: Literal["fluid.prime"]


class Stop(_Command):
    op: Literal["fluid.stop"]


class EmergencyStop(_Command):
    """Everything stops at once and latches; any authorised client may send it."""

    op: Literal["estop"]
    source: str = Field(default="unnamed client", min_length=1, max_length=64)


class RunSelfTest(_Command):
    op: Literal["selftest.run"]


class SimulateLoopHang(_Command):
    """Simulator profiles only: block the daemon's event loop, to prove the loop-stall guard."""

    op: Literal["debug.hang"]
    seconds: float = Field(gt=0, le=5)


class ResetFault(_Command):
    op: Literal["fault.reset"]


class Status(_Command):
    op: Literal["status"]


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
    | Status,
    Field(discriminator="op"),
]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


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
