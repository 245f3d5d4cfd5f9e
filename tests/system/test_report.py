"""A whole simulated procedure, then its report and its archive (docs/record.md): irrigation, the
tip against the wall and its stop, reset, a bolus, the basket's capture and the "empty duct"
snapshot. The report's trends and timeline show each step, its figures add up, it carries the
snapshot, and the archive (with the snapshot's files) verifies until a byte of it is changed."""

from __future__ import annotations

import asyncio
import io
import re
import tarfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from rig.cli.main import main
from rig.events.journal import JOURNAL_FILE
from rig.fluid.events import StopCause
from rig.report.archive import verify
from rig.report.model import build_report
from rig.report.query import find_procedure, procedure_events
from tests.system.harness import RigUnderTest, ready_rig_with_camera

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

RESISTANCE_STOPS = {StopCause.RESISTANCE_LIMIT.value, StopCause.RESISTANCE_RISE.value}


def _basket_in(state: str, status: dict[str, Any]) -> bool:
    return bool(status["basket"]["state"] == state)


async def _procedure(rig: RigUnderTest) -> None:
    """Start, irrigate, the tip against the wall and its stop, reset, a bolus, the basket's
    capture and its retraction, the "empty duct" snapshot, stop."""
    assert (await rig.command({"op": "procedure.start", "ref": "demo-1", "syringe_lot": "L42"}))[
        "ok"
    ]
    await rig.irrigate_steadily(1.0, settle_s=1.5)
    await rig.sim("scenario", name="tip_against_wall")
    stop = await rig.next_event(lambda e: e.get("kind") == "stop")
    assert stop["cause"] in RESISTANCE_STOPS
    state = await rig.wait_until(lambda s: bool(s["alarms"]), 1.0)
    assert state["alarms"][0]["priority"] == "high"
    assert (await rig.command({"op": "alarm.ack"}))["result"]["acknowledged"] == ["fault"]
    await rig.sim("clear")
    await asyncio.sleep(0.6)
    assert (await rig.command({"op": "fault.reset"}))["ok"]
    await rig.wait_until(lambda s: s["mode"] == "stopped", 5.0)
    reply = await rig.command({"op": "fluid.bolus", "volume_ml": 0.05, "rate_ml_min": 0.5})
    assert reply["ok"], reply
    await rig.next_event(
        lambda e: e.get("kind") == "stop" and e.get("cause") == "completed", timeout_s=20.0
    )
    await asyncio.sleep(0.6)  # one more trend sample after the bolus
    await rig.wait_until(lambda s: (s.get("camera") or {}).get("live") is True, 10.0)
    for op, arrived in (("open", "open"), ("close", "captured"), ("retract", "retracted")):
        reply = await rig.command({"op": f"basket.{op}"})
        assert reply["ok"], reply
        await rig.wait_until(partial(_basket_in, arrived), 10.0)
    # The lesion came back with the basket: the simulated duct the snapshot shows is empty.
    await rig.wait_sim(lambda s: bool(s["basket"]["lesion_retrieved"]), 2.0)
    reply = await rig.command({"op": "camera.snapshot", "note": "empty duct"}, timeout_s=10.0)
    assert reply["ok"], reply
    assert (await rig.command({"op": "procedure.stop"}))["ok"]


async def test_a_procedure_report_shows_each_step_and_its_archive_verifies(
    tmp_path: Path,
) -> None:
    async with ready_rig_with_camera(tmp_path) as rig:
        await _procedure(rig)
    journal = tmp_path / "run" / JOURNAL_FILE

    span = find_procedure(journal, "demo-1")
    report = build_report(procedure_events(journal, span))
    assert report.ref == "demo-1" and not report.open and report.restarts == 0
    latched = [mark for mark in report.stops if mark.latched]
    assert [mark.label for mark in latched] in ([c] for c in RESISTANCE_STOPS)
    assert "against the wall" in latched[0].detail
    assert len(report.resets) == 1 and report.resets[0].t_s > latched[0].t_s
    (alarm,) = report.alarms
    assert (alarm.alarm, alarm.priority) == ("fault", "high")
    assert alarm.t_s == pytest.approx(latched[0].t_s, abs=0.01)  # raised by the stop itself
    assert alarm.acknowledged_t_s is not None and alarm.acknowledged_by == "engineer"
    assert alarm.cleared_t_s == pytest.approx(report.resets[0].t_s, abs=0.01)
    assert any(m.label == "completed" and m.t_s > report.resets[0].t_s for m in report.stops)
    (grasp,) = report.basket
    assert grasp.label == "basket captured" and "holds the lesion" in grasp.detail
    (snapshot,) = report.snapshots
    assert snapshot.note == "empty duct" and snapshot.t_s > grasp.t_s
    assert report.saline_ml > 0.02
    assert report.contrast_ml == pytest.approx(0.05, abs=0.01)
    assert report.max_pressure_mmhg is not None and report.max_pressure_mmhg > 10
    assert len(report.series.t_s) >= 10
    assert any(abs(flow - 1.0) < 0.05 for flow in report.series.flow_ml_min)  # the irrigation
    texts = [row.text for row in report.timeline]
    steps = [
        "procedure started (ref demo-1)",
        "fluid.irrigate (flow_ml_min 1.0) by the engineer",
        "fluid stopped: the duct's resistance",
        "ALARM HIGH (fault)",
        "alarm fault acknowledged by the engineer",
        "fault reset",
        "alarm fault cleared",
        "fluid.bolus (volume_ml 0.05, rate_ml_min 0.5) by the engineer",
        "fluid stopped: the step completed",
        "basket retracted -> opening",
        "basket open -> closing",
        "basket closing -> captured",
        "basket captured -> retracting",
        "basket retracting -> retracted",
        "snapshot \u201cempty duct\u201d",
        "procedure stopped",
    ]
    # In this order (the prime's own completion comes before the irrigation).
    at = 0
    for step in steps:
        found = [i for i, text in enumerate(texts) if i >= at and text.startswith(step)]
        assert found, f"{step!r} not after row {at}: {texts}"
        at = found[0]

    out = tmp_path / "report"
    code = await asyncio.to_thread(
        main, ["report", report.procedure[:17], "--journal", str(journal), "--out", str(out)]
    )
    assert code == 0
    page = (out / "report.html").read_text()
    assert "Procedure " + report.procedure in page and "ref demo-1" in page
    assert page.count("data:image/png;base64,") == 2 and "L42" in page  # trends, snapshot
    assert "<b>empty duct</b>" in page
    assert page.count("<tr") >= len(report.timeline)
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    # The trends, the timeline, then the snapshot's page.
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 3
    assert b"/Subtype /Image" in pdf

    archive = tmp_path / "p.tar"
    code = await asyncio.to_thread(
        main, ["procedure", "export", "demo-1", "--journal", str(journal), "--out", str(archive)]
    )
    assert code == 0
    result = verify(archive)
    # events, report.html, report.pdf, the snapshot's PNG, its raw frame's PNG and its JSON
    assert result.ok and result.members == 6, result
    tampered = tmp_path / "tampered.tar"
    _rewrite(archive, tampered, "events.jsonl", lambda b: b.replace(b'"demo-1"', b'"demo-2"'))
    result = verify(tampered)
    assert not result.ok
    assert any(p.startswith("events.jsonl: sha256") for p in result.problems), result


def _rewrite(source: Path, target: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            extracted = old.extractfile(member)
            assert extracted is not None
            data = extracted.read()
            if member.name == name:
                data = change(data)
                member.size = len(data)
            new.addfile(member, io.BytesIO(data))
