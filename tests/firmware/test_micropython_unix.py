"""The sample path allocates nothing, proven under MicroPython itself: the unix port runs
`mpy_heap_lock.py` with the heap locked, where any allocation raises MemoryError.

Runs when a `micropython` executable is on PATH; no package registry ships an official unix port
(docs/firmware.md says what was found and why none is a dependency), so otherwise it skips."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = shutil.which("micropython")
pytestmark = pytest.mark.skipif(
    MICROPYTHON is None,
    reason="no MicroPython unix port on PATH (none from the package registries: docs/firmware.md)",
)


def _run(script: str) -> subprocess.CompletedProcess[str]:
    assert MICROPYTHON is not None
    return subprocess.run(
        [MICROPYTHON, script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_sample_path_allocates_nothing_under_micropython() -> None:
    result = _run("tests/firmware/mpy_heap_lock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    # frames written: 2 command answers, 101 samples (the start instant and 100 more) and the
    # watchdog's EVENT; the watchdog trip is latched and the relay open
    assert result.stdout.split() == ["OK", "104", "101", "1", "False"]


def test_the_resistance_stop_allocates_nothing_under_micropython() -> None:
    result = _run("tests/firmware/mpy_heap_lock_resistance.py")
    assert result.returncode == 0, result.stdout + result.stderr
    # frames: 3 command answers, 101 samples and the RESISTANCE_TRIP report; the resistance trip
    # is latched and the relay open
    assert result.stdout.split() == ["OK", "105", "101", "8", "False"]


def test_the_heap_lock_catches_an_allocation(tmp_path: Path) -> None:
    script = tmp_path / "alloc.py"
    script.write_text("import micropython\nmicropython.heap_lock()\nx = [1, 2]\n")
    result = _run(str(script))
    assert result.returncode != 0 and "heap is locked" in result.stdout + result.stderr
