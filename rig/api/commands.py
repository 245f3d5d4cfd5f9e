"""The command language of the daemon's API, validated by pydantic at the edge.

A command is a JSON object with an `op` and that op's fields, nothing else. Every number is
finite and carries its unit in its name; range checks against the profile's limits happen in
the controller, which knows them, and come back as error replies just the same.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

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


def parse_command(payload: bytes) -> Command:
    """Bytes from the wire to a typed command, or a CommandError that says what was wrong."""
    try:
        return _ADAPTER.validate_json(payload)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(command)"
            given = error.get("input")
            shown = "" if isinstance(given, dict) else f" = {given!r}"
            problems.append(f"{where}{shown}: {error['msg']}")
        raise CommandError("invalid", "; ".join(problems)) from None
