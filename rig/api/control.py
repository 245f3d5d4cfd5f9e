"""Which station has control of the rig.

The surgeon's console owns the foot pedal and the fluid controls during a procedure: it takes
control when it starts, and a bench engineer's command line can then command the fluid only by
taking control over explicitly (`control.take` with `force`), which is recorded. A station is a
role (each role has its own command topic, enforced by the broker's ACL: rig/api/roles.py); the
command line opens a new connection per command, so a client id cannot name a station.

Nobody in control (at start, or after a release) means any commanding station may command, as
on a bench without a console. Stops and the e-stop never need control: refusing one is never the
safe side.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.clock import Clock
from drivers.transport.mqtt import JsonObject
from rig.api.roles import Role
from rig.events.models import ControlChanged


class ControlConflictError(Exception):
    """Another station has control, and this request did not take it over."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Handover:
    """A change of control, for the record."""

    previous: Role | None
    holder: Role | None
    client: str | None
    forced: bool

    def as_event(self) -> ControlChanged:
        return ControlChanged(
            previous=None if self.previous is None else self.previous.value,
            holder=None if self.holder is None else self.holder.value,
            client=self.client,
            forced=self.forced,
        )


class ControlOwnership:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.holder: Role | None = None
        self.client: str | None = None
        self.since_s: float | None = None

    def refusal(self, role: Role, op: str) -> str | None:
        """Why `role` may not run an op that needs control now, or None if it may."""
        if self.holder is None or self.holder is role:
            return None
        return (
            f"{op} refused: the {self.holder} station has control of the rig; "
            f"take it over explicitly (control.take with force, `rig control take --force`)"
        )

    def take(self, role: Role, client: str | None, *, force: bool) -> Handover | None:
        """`role` takes control; None if it already had it. Raises ControlConflictError if
        another station has it and `force` is not given."""
        if self.holder is role:
            return None
        if self.holder is not None and not force:
            raise ControlConflictError(
                f"control.take refused: the {self.holder} station has control; "
                "take it over with force (the handover is recorded)"
            )
        handover = Handover(self.holder, role, client, forced=self.holder is not None)
        self.holder, self.client, self.since_s = role, client, self._clock.monotonic()
        return handover

    def release(self, role: Role, client: str | None) -> Handover | None:
        """`role` gives control up; None if it did not have it."""
        if self.holder is not role:
            return None
        handover = Handover(role, None, client, forced=False)
        self.holder, self.client, self.since_s = None, None, None
        return handover

    def as_dict(self) -> JsonObject:
        return {
            "holder": None if self.holder is None else self.holder.value,
            "client": self.client,
        }
