"""The procedure record, daemon side (docs/record.md): a procedure groups the journal's events,
carries its trends and volumes, survives a SIGKILL of the daemon, and a record directory that
cannot take it refuses new procedures without touching the fluid or its safety."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rig.config import RigProfile
from rig.events.journal import JOURNAL_FILE, read_journal
from rig.events.models import (
    DaemonStarted,
    EventBase,
    ProcedureResumed,
    ProcedureStarted,
    ProcedureStopped,
    StorageFault,
    StorageRestored,
    TrendSample,
    parse_event,
)
from rig.record.storage import CHECK_PERIOD_S, PROBE_FILE
from tests.system.harness import RigUnderTest
from tests.system.inprocess import inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


def _of(events: Sequence[EventBase], kind: type[EventBase]) -> list[EventBase]:
    return [event for event in events if isinstance(event, kind)]


def _error(reply: dict[str, object]) -> dict[str, Any]:
    error = reply.get("error")
    assert isinstance(error, dict), reply
    return error


async def test_a_procedure_groups_its_events_with_trends_and_volumes(rig: RigUnderTest) -> None:
    reply = await rig.command({"op": "procedure.start", "ref": "study-7", "syringe_lot": "L123"})
    assert reply["ok"], reply
    procedure = reply["result"]["procedure"]["id"]
    assert (await rig.status())["procedure"]["id"] == procedure
    again = await rig.command({"op": "procedure.start"})
    assert again["error"]["code"] == "state_conflict", again
    await rig.irrigate_steadily(1.0, settle_s=1.5)
    assert (await rig.command({"op": "fluid.stop"}))["ok"]
    stopped = await rig.command({"op": "procedure.stop"})
    assert stopped == {**stopped, "ok": True, "result": {"procedure": procedure}}, stopped
    assert (await rig.status())["procedure"] is None

    events = read_journal(rig.rig.run_dir / JOURNAL_FILE)
    (started,) = _of(events, ProcedureStarted)
    assert isinstance(started, ProcedureStarted)
    assert (started.procedure, started.ref, started.syringe_lot) == (procedure, "study-7", "L123")
    assert started.syringe_ml == 10.0 and not started.primed
    trends = [e for e in _of(events, TrendSample) if isinstance(e, TrendSample)]
    assert len(trends) >= 3 and all(t.procedure == procedure for t in trends)
    assert any(t.flow_ml_min > 0.5 and t.pressure_mmhg is not None for t in trends)
    (closing,) = _of(events, ProcedureStopped)
    assert isinstance(closing, ProcedureStopped)
    # The prime ran inside the procedure too: its saline counts.
    assert closing.saline_ml >= trends[-1].saline_ml > 0.02
    assert started.seq < trends[0].seq and trends[-1].seq < closing.seq


@pytest.mark.parametrize("ref", ["Jane Doe", "", "x" * 41, "1970-01-01 Smith"])
async def test_a_reference_that_could_carry_a_name_is_refused(rig: RigUnderTest, ref: str) -> None:
    reply = await rig.command({"op": "procedure.start", "ref": ref})
    assert reply["error"]["code"] == "invalid", reply
    assert "ref" in reply["error"]["message"]
    assert (await rig.status())["procedure"] is None


async def test_a_procedure_goes_on_after_a_daemon_sigkill(rig: RigUnderTest) -> None:
    reply = await rig.command({"op": "procedure.start", "ref": "p-1"})
    procedure = reply["result"]["procedure"]["id"]
    await rig.irrigate_steadily(1.0, settle_s=1.5)
    before = [e for e in read_journal(rig.rig.run_dir / JOURNAL_FILE) if isinstance(e, TrendSample)]
    assert before and before[-1].saline_ml > 0
    assert rig.rig.daemon is not None
    rig.kill_daemon(signal.SIGKILL)
    await rig.rig.daemon.wait()
    await rig.rig.start_daemon()
    state = await rig.wait_until(lambda s: s["procedure"] is not None, 20.0)
    assert state["procedure"]["id"] == procedure
    stopped = await rig.command({"op": "procedure.stop"})
    assert stopped["result"]["procedure"] == procedure, stopped
    events = read_journal(rig.rig.run_dir / JOURNAL_FILE)
    restart = next(e for e in events if isinstance(e, DaemonStarted) and e.opened_at_seq > 0)
    (resumed,) = _of(events, ProcedureResumed)
    assert restart.seq < resumed.seq
    (closing,) = _of(events, ProcedureStopped)
    assert isinstance(closing, ProcedureStopped)
    # The volume dispensed before the kill is carried into the resumed procedure.
    assert closing.saline_ml >= before[-1].saline_ml


def _min_free_above_the_disk(profile: RigProfile) -> RigProfile:
    record = profile.record.model_copy(update={"min_free_mb": 1_000_000.0})
    return profile.model_copy(update={"record": record})


async def test_a_full_disk_refuses_new_procedures_and_leaves_the_fluid_alone(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path, profile=_min_free_above_the_disk) as rig:
        await rig.wait_ready()
        refused = await rig.command({"op": "procedure.start"})
        assert _error(refused)["code"] == "storage", refused
        assert "record.min_free_mb" in _error(refused)["message"]
        assert rig.daemon.procedures.open is None
        assert rig.daemon.state(online=True)["storage"]["ok"] is False
        # The safety functions and the fluid do not depend on the record.
        await rig.prime()
        await rig.irrigating(1.0)
        assert rig.daemon.interlock.latched is None
        await rig.ok({"op": "fluid.stop"})
        await asyncio.sleep(CHECK_PERIOD_S + 0.5)
        events = [parse_event(body) for _, body in rig.daemon.journal._window]
        assert len(_of(events, StorageFault)) == 1  # one alarm, not one per check


async def test_an_unwritable_record_directory_raises_an_alarm_that_clears(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        # The probe the check writes cannot be created: the directory refuses writes.
        blocker = tmp_path / PROBE_FILE
        blocker.mkdir()
        await rig.wait_for(
            lambda: rig.daemon.storage.fault is not None, 3 * CHECK_PERIOD_S, "storage fault"
        )
        refused = await rig.command({"op": "procedure.start", "ref": "p-2"})
        assert _error(refused)["code"] == "storage", refused
        assert "cannot be written" in _error(refused)["message"]
        await rig.prime()
        await rig.irrigating(1.0)
        blocker.rmdir()
        await rig.wait_for(
            lambda: rig.daemon.storage.fault is None, 3 * CHECK_PERIOD_S, "storage restored"
        )
        assert (await rig.command({"op": "procedure.start", "ref": "p-2"}))["ok"]
        await asyncio.sleep(0.2)
        await rig.ok({"op": "fluid.stop"})
        assert rig.daemon.interlock.latched is None
        alarms = [parse_event(body) for _, body in rig.daemon.journal._window]
        assert [type(a) for a in alarms if a.kind.startswith("storage")] == [
            StorageFault,
            StorageRestored,
        ]
