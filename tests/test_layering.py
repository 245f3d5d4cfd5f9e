"""The layering contract (.importlinter) is enforced, not decorative: a forbidden import breaks it.

`./run test` runs `lint-imports` on the tree itself; these tests prove, on a copy of the tree with
one import added, that the contract names the broken rule, and that the CLI's parser (which
`rig daemon` goes through) leaves the safety case unloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_copy_with(
    tmp_path: Path, module: str, added_import: str
) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on a copy of the packages where `module` has one more import."""
    for package in ("rig", "drivers", "assurance", "firmware"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    path = tmp_path / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{added_import}\n", encoding="utf-8")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "added_import", "broken_contract"),
    [
        ("drivers.ne1000.codec", "import asyncio", "Codecs have no I/O"),
        ("rig.fluid.events", "import drivers.sim.world", "The runtime never imports the simulator"),
        ("rig.safety.links", "import assurance.report", "The runtime never imports the simulator"),
        ("rig.api.topics", "import rig.cli.main", "Layers: codec <- transport"),
        (
            "drivers.sim.world",
            "import drivers.ne1000.driver",
            "The simulator speaks through the codecs",
        ),
        (
            "drivers.sim.usb.tic",
            "import drivers.tic.driver",
            "The simulator speaks through the codecs",
        ),
        (
            "drivers.sim.usb.pedals",
            "import drivers.pedal.driver",
            "The simulator speaks through the codecs",
        ),
        ("drivers.tic.codec", "import usb.core", "Codecs have no I/O"),
        ("drivers.pedal.reports", "import asyncio", "Codecs have no I/O"),
        ("firmware.board", "import drivers.ioboard.codec", "The I/O board's firmware stands alone"),
        ("firmware.framing", "import dataclasses", "The I/O board's firmware stands alone"),
        ("firmware.board", "import machine", "Only the firmware's hardware layers"),
    ],
)
def test_a_forbidden_import_breaks_the_layering_contract(
    tmp_path: Path, module: str, added_import: str, broken_contract: str
) -> None:
    result = lint_copy_with(tmp_path, module, added_import)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(broken_contract) for line in broken), result.stdout


def test_the_cli_parser_leaves_the_safety_case_unloaded() -> None:
    """`rig daemon` builds the whole CLI parser: the safety case must not come with it."""
    code = (
        "import sys; from rig.cli.main import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'assurance'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
