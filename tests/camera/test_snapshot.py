"""Snapshots: a PNG and its metadata, readable as soon as acknowledged, even after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from rig.camera.snapshot import SnapshotMeta, list_snapshots, write_snapshot

REPO = Path(__file__).resolve().parents[2]


def meta(note: str = "empty duct") -> SnapshotMeta:
    return SnapshotMeta(
        taken_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        frame_t_ns=123_456_789,
        pressure_mmhg=18.5,
        flow_ml_min=1.0,
        volume_ml=3.25,
        note=note,
    )


def test_a_snapshot_reads_back_with_its_picture_and_metadata(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    written = write_snapshot(tmp_path, image, meta())
    [listed] = list_snapshots(tmp_path)
    assert listed == written
    assert listed.meta.note == "empty duct"
    assert listed.meta.pressure_mmhg == 18.5
    picture = cv2.imread(str(listed.png))
    assert picture is not None
    assert np.array_equal(picture, image)  # PNG: lossless


def test_snapshots_are_numbered_in_order(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    numbers = [write_snapshot(tmp_path, image, meta(f"n{k}")).number for k in range(3)]
    assert numbers == [1, 2, 3]
    assert [s.meta.note for s in list_snapshots(tmp_path)] == ["n0", "n1", "n2"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"note": "line one\nline two"}, "note"),
        ({"note": "x" * 501}, "note"),
        ({"taken_at": datetime(2026, 12, 1, 9, 30)}, "taken_at"),
    ],
)
def test_bad_metadata_is_refused_with_the_field_named(
    changes: dict[str, object], field: str
) -> None:
    fields = meta().model_dump() | changes
    with pytest.raises(ValidationError, match=field):
        SnapshotMeta(**fields)


def test_an_interrupted_snapshot_leaves_no_snapshot_and_no_reused_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the PNG and the JSON: no snapshot appears, and the next one does not take
    the orphan picture's number."""
    image = np.zeros((8, 8, 3), np.uint8)
    real_replace = os.replace

    def fail_on_json(src: str | Path, dst: str | Path) -> None:
        if str(dst).endswith(".json"):
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_json)
    with pytest.raises(OSError, match="disk gone"):
        write_snapshot(tmp_path, image, meta())
    monkeypatch.undo()
    assert list_snapshots(tmp_path) == []
    assert write_snapshot(tmp_path, image, meta()).number == 2


_TAKER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import numpy as np
from rig.camera.snapshot import SnapshotMeta, write_snapshot
image = np.full((480, 640, 3), (30, 60, 200), np.uint8)
meta = SnapshotMeta(taken_at=datetime.now(UTC), frame_t_ns=1, pressure_mmhg=20.0,
                    flow_ml_min=1.0, volume_ml=2.0, note="papilloma at 32 mm")
write_snapshot(Path(sys.argv[1]), image, meta)
print("acknowledged", flush=True)
sys.stdin.readline()  # killed here
"""


def test_an_acknowledged_snapshot_is_readable_after_a_sigkill(tmp_path: Path) -> None:
    taker = subprocess.Popen(
        [sys.executable, "-c", _TAKER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert taker.stdout is not None
        assert taker.stdout.readline().strip() == "acknowledged"
    finally:
        os.kill(taker.pid, signal.SIGKILL)
        taker.wait(timeout=10)
    [snap] = list_snapshots(tmp_path)
    assert snap.meta.note == "papilloma at 32 mm"
    picture = cv2.imread(str(snap.png))
    assert picture is not None and picture.shape == (480, 640, 3)
    assert not list(tmp_path.glob("*.tmp"))
