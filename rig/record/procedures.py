"""Procedures: what groups the journal's events into one patient's record.

A procedure is open from its `procedure_started` event to its `procedure_stopped`; every event
journaled in between belongs to it, so the record needs no column of its own and a new kind of
event joins it by being journaled. A daemon that dies with a procedure open finds it in the
journal at its next start and goes on with it (`procedure_resumed`): a crash does not end a
procedure, and nothing journaled before it is lost (the journal is durable).

No patient-identifying data is stored: `ref` is a pseudonymous reference, limited to a short run
of letters, digits and `._-`, so that a name or a date of birth cannot be typed into it by habit.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from drivers.transport.mqtt import JsonObject
from rig.config import RigProfile
from rig.events.models import (
    EventBase,
    ProcedureResumed,
    ProcedureStarted,
    ProcedureStopped,
    TrendSample,
)

REF_PATTERN = r"^[A-Za-z0-9._-]{1,40}$"
"""A pseudonymous reference or a lot number: no spaces, so no names."""


class ProcedureError(Exception):
    """A procedure command that cannot be done now; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OpenProcedure:
    procedure: str
    ref: str | None
    started_wall_time: float
    started_seq: int

    def as_dict(self) -> JsonObject:
        return {
            "id": self.procedure,
            "ref": self.ref,
            "started": self.started_wall_time,
            "started_seq": self.started_seq,
        }


def new_procedure_id(wall_time: float) -> str:
    """`20261201T184312Z-3fa1`: sortable by time, unique across restarts within a second."""
    stamp = datetime.datetime.fromtimestamp(wall_time, datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class ProcedureBook:
    """The open procedure, if any. `refusal()` says why a new one may not start (the record's
    storage); `volumes()` gives the saline and contrast (mL) the controller has dispensed since
    the daemon started.

    A procedure's own volumes count from its start, and go on across a daemon restart from its
    last trend sample (the controller counts from zero again): what flowed between that sample
    and the crash (at most one trend period, and the pump stops on its own when the host goes
    silent) is the only volume a crash can lose.
    """

    def __init__(
        self,
        profile: RigProfile,
        record: Callable[[EventBase], EventBase],
        *,
        refusal: Callable[[], str | None],
        primed: Callable[[], bool],
        volumes: Callable[[], tuple[float, float]],
        wall_time: Callable[[], float],
    ) -> None:
        self._profile = profile
        self._record = record
        self._refusal = refusal
        self._primed = primed
        self._volumes = volumes
        self._wall_time = wall_time
        self.open: OpenProcedure | None = None
        self._carried_ml = (0.0, 0.0)
        self._baseline_ml = (0.0, 0.0)

    def resume(self, last: ProcedureStarted | None, last_trend: TrendSample | None) -> None:
        """At the daemon's start: `last` is the journal's last procedure_started without a
        procedure_stopped after it, if any; that procedure goes on, its volumes from
        `last_trend` (its last trend sample)."""
        if last is None:
            return
        self.open = OpenProcedure(last.procedure, last.ref, last.wall_time, last.seq)
        if last_trend is not None and last_trend.procedure == last.procedure:
            self._carried_ml = (last_trend.saline_ml, last_trend.contrast_ml)
        self._baseline_ml = self._volumes()
        self._record(ProcedureResumed(procedure=last.procedure))

    def volumes_ml(self) -> tuple[float, float]:
        """Saline and contrast dispensed in the open procedure (mL)."""
        (saline, contrast), (saline_0, contrast_0) = self._volumes(), self._baseline_ml
        carried_saline, carried_contrast = self._carried_ml
        return carried_saline + saline - saline_0, carried_contrast + contrast - contrast_0

    def start(
        self, ref: str | None, syringe_lot: str | None, role: str, client: str | None
    ) -> OpenProcedure:
        if self.open is not None:
            raise ProcedureError(
                "state_conflict",
                f"procedure {self.open.procedure} is open: stop it before starting another",
            )
        refusal = self._refusal()
        if refusal is not None:
            raise ProcedureError("storage", f"no new procedure: {refusal}")
        syringe = self._profile.syringe
        started = self._record(
            ProcedureStarted(
                procedure=new_procedure_id(self._wall_time()),
                rig_id=self._profile.rig_id,
                ref=ref,
                role=role,
                client=client,
                syringe_ml=syringe.volume_ml,
                syringe_diameter_mm=syringe.inner_diameter_mm,
                syringe_lot=syringe_lot,
                primed=self._primed(),
            )
        )
        assert isinstance(started, ProcedureStarted)
        self._carried_ml, self._baseline_ml = (0.0, 0.0), self._volumes()
        self.open = OpenProcedure(started.procedure, ref, started.wall_time, started.seq)
        return self.open

    def stop(self, role: str, client: str | None) -> str:
        current = self.open
        if current is None:
            raise ProcedureError("state_conflict", "no procedure is open")
        saline_ml, contrast_ml = self.volumes_ml()
        self._record(
            ProcedureStopped(
                procedure=current.procedure,
                role=role,
                client=client,
                saline_ml=round(saline_ml, 4),
                contrast_ml=round(contrast_ml, 4),
            )
        )
        self.open = None
        return current.procedure

    def as_dict(self) -> JsonObject | None:
        return None if self.open is None else self.open.as_dict()
