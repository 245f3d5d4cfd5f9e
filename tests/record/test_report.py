"""The report model, its renderers and the archive, on events made here (no rig)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rig.events.models import (
    BasketChanged,
    EventBase,
    ProcedureStarted,
    ProcedureStopped,
    SnapshotTaken,
    Stopped,
    TrendSample,
)
from rig.fluid.events import StopCause, StopEvent
from rig.report.archive import MANIFEST, verify
from rig.report.model import build_report
from rig.report.render import write_report

T0 = 1_796_000_000.0


def _at(event: EventBase, t_s: float, seq: int) -> EventBase:
    return event.model_copy(update={"wall_time": T0 + t_s, "seq": seq})


def _events(snapshot_path: str) -> list[EventBase]:
    started = ProcedureStarted(
        procedure="p1",
        rig_id="sim-1",
        ref="r-1",
        role="surgeon",
        client="console",
        syringe_ml=10.0,
        syringe_diameter_mm=14.43,
        syringe_lot=None,
        primed=True,
    )
    trends = [
        TrendSample(
            procedure="p1",
            pressure_mmhg=None if i == 0 else 10.0 + i,
            flow_ml_min=1.0,
            resistance_mmhg_min_per_ml=None if i == 0 else 17.0,
            saline_ml=0.01 * i,
            contrast_ml=0.0,
            mode="irrigate",
        )
        for i in range(5)
    ]
    stop = Stopped.of(
        StopEvent(
            StopCause.RESISTANCE_LIMIT,
            "R over the limit",
            mode="irrigate",
            figures={"pressure_mmhg": 41.0, "flow_ml_min": 1.0},
        )
    )
    snapshot = SnapshotTaken(
        procedure="p1",
        path=snapshot_path,
        note="empty duct",
        pressure_mmhg=3.0,
        flow_ml_min=0.0,
        saline_ml=0.04,
        contrast_ml=0.0,
    )
    stopped = ProcedureStopped(
        procedure="p1", role="surgeon", client="console", saline_ml=0.04, contrast_ml=0.0
    )
    timed = [started, *trends, stop, snapshot, stopped]
    return [_at(event, 0.5 * i, i + 1) for i, event in enumerate(timed)]


def test_the_model_adds_up_and_marks_the_latched_stop_as_an_alarm() -> None:
    report = build_report(_events("snap.png"))
    assert (report.rig_id, report.ref, report.duration_s) == ("sim-1", "r-1", 4.0)
    assert report.max_pressure_mmhg == 41.0  # the stop's figure, above every trend sample
    assert report.saline_ml == 0.04 and report.contrast_ml == 0.0
    assert [m.label for m in report.stops if m.latched] == ["resistance_limit"]
    assert [s.note for s in report.snapshots] == ["empty duct"]
    assert "latched until reset" in report.timeline[1].text  # trends are not in the timeline
    assert report.stops[0].figures == {"pressure_mmhg": 41.0, "flow_ml_min": 1.0}


def test_the_basket_is_marked_where_it_grasps_or_a_fault_halts_it_moving() -> None:
    started, *_, stopped = _events("snap.png")

    def moved(from_state: str, to_state: str, **fields: object) -> BasketChanged:
        return BasketChanged.model_validate(
            {"from_state": from_state, "to_state": to_state, "cause": "c", **fields}
        )

    basket = [
        moved("retracted", "fault"),  # a fault finds it at rest: nothing halted
        moved("fault", "retracted"),
        moved("retracted", "opening"),
        moved("opening", "open"),
        moved("open", "closing"),
        moved("closing", "captured", error_usteps=900, at_force_limit=True, holds_lesion=True),
        moved("captured", "retracting"),
        moved("retracting", "fault", holds_lesion=True),
    ]
    timed = [started, *basket, stopped]
    report = build_report([_at(e, 0.5 * i, i + 1) for i, e in enumerate(timed)])
    assert [(m.t_s, m.label, m.latched) for m in report.basket] == [
        (3.0, "basket at force limit", False),
        (4.0, "basket fault", True),
    ]
    assert "holds the lesion; closed at the force limit" in report.basket[0].detail
    assert sum(row.kind == "basket" for row in report.timeline) == len(basket)


def test_every_stop_cause_has_plain_words() -> None:
    assert all(cause.in_plain_words for cause in StopCause)


def test_the_renderers_embed_the_snapshot_and_never_read_outside_the_record(
    tmp_path: Path,
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    image = np.zeros((32, 48, 3), np.uint8)
    image[8:24, 12:36] = (40, 40, 200)
    assert cv2.imwrite(str(record / "snap.png"), image)
    secret = tmp_path / "secret.png"
    secret.write_bytes((record / "snap.png").read_bytes())

    html_path, pdf_path = write_report(build_report(_events("snap.png")), record, tmp_path / "a")
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2 and "empty duct" in page
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 3  # trends, timeline, the snapshot

    escaped = build_report(_events("../secret.png"))
    html_path, _ = write_report(escaped, record, tmp_path / "b")
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 1  # the trends only
    assert "image missing: ../secret.png" in page


def _archive(path: Path, files: dict[str, bytes], manifest: dict[str, object]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in {**files, MANIFEST: json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("files", "listed", "problem"),
    [
        ({"a": b"x", "b": b"y"}, ["a"], "b: in the archive but not in the manifest"),
        ({"a": b"x"}, ["a", "b"], "b: in the manifest but missing"),
    ],
)
def test_verify_names_a_missing_or_an_added_file(
    tmp_path: Path, files: dict[str, bytes], listed: list[str], problem: str
) -> None:
    digests = {
        name: {"sha256": hashlib.sha256(files.get(name, b"x")).hexdigest(), "bytes": 1}
        for name in listed
    }
    _archive(
        tmp_path / "a.tar",
        files,
        {"format": "ductoscopy-procedure-archive/1", "procedure": "p1", "files": digests},
    )
    result = verify(tmp_path / "a.tar")
    assert not result.ok and result.problems == [problem]


def test_verify_refuses_what_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"not a tar file at all" * 100)
    result = verify(tmp_path / "x.tar")
    assert not result.ok and "cannot be read as an archive" in result.problems[0]
