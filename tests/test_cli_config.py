"""`rig config check` / `rig config show`: output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rig.cli.main import main
from rig.config import CONFIG_DIR, load_profile, parse_profile

REPO = Path(__file__).resolve().parents[1]
SIM = CONFIG_DIR / "sim.toml"
BENCH = CONFIG_DIR / "bench.example.toml"


@pytest.fixture
def invalid(tmp_path: Path) -> Path:
    text = SIM.read_text(encoding="utf-8").replace(
        "max_pressure_mmhg = 40.0", "max_pressure_mmhg = 400\nmax_presure_mmhg = 1"
    )
    path = tmp_path / "invalid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_valid_profiles_prints_ok_and_a_summary_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "check", str(SIM), str(BENCH)]) == 0
    out = capsys.readouterr().out
    assert f"{SIM}: ok" in out
    assert f"{BENCH}: ok" in out
    assert "rig_id: sim-1" in out
    assert "rig_id: bench-2" in out
    assert 'devices.pump: { sim = "pump" }' in out
    assert "vid = 0x1209" in out
    assert "private Mosquitto" in out
    assert "mqtts://mqtt.lab.example.org:8883" in out
    assert "max_pressure_mmhg" in out and "40 mmHg" in out
    assert "saline_volume_cap_ml" in out and "10 mL" in out


def test_check_invalid_profile_lists_every_problem_and_exits_1(
    invalid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(invalid)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{invalid}: 2 problems"
    assert lines[1].startswith("  limits.max_pressure_mmhg = 400: above the hard bound 150 mmHg")
    assert lines[2].startswith("  limits.max_presure_mmhg = 1: unknown key")


def test_check_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.toml"
    assert main(["config", "check", str(SIM), str(missing)]) == 2
    out = capsys.readouterr().out
    assert f"{SIM}: ok" in out
    assert f"{missing}: cannot read" in out


def test_check_a_directory_is_unreadable_exit_2(tmp_path: Path) -> None:
    assert main(["config", "check", str(tmp_path)]) == 2


def test_check_mixed_valid_and_invalid_exits_1(invalid: Path) -> None:
    assert main(["config", "check", str(SIM), str(invalid)]) == 1


def test_check_syntax_error_is_invalid_not_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rig_id = \n")
    assert main(["config", "check", str(bad)]) == 1
    assert "TOML syntax error at line 1" in capsys.readouterr().out


def test_show_prints_toml_that_reads_back_with_defaults_filled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "show", str(BENCH)]) == 0
    out = capsys.readouterr().out
    assert "max_resistance_rise_mmhg_min_per_ml_per_s = 25.0" in out  # a default, not in the file
    assert parse_profile(out) == load_profile(BENCH)


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--json", str(SIM)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rig_id"] == "sim-1"
    assert data["devices"]["pump"]["port"] == {"sim": "pump"}
    assert data["limits"]["max_pressure_mmhg"] == 40.0


def test_show_invalid_profile_exits_1(invalid: Path) -> None:
    assert main(["config", "show", str(invalid)]) == 1


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_check_as_a_subprocess_exit_codes(invalid: Path) -> None:
    ok = _run("config", "check", str(SIM))
    assert ok.returncode == 0, ok.stderr
    assert f"{SIM}: ok" in ok.stdout
    bad = _run("config", "check", str(invalid))
    assert bad.returncode == 1, bad.stderr
    assert "above the hard bound 150 mmHg" in bad.stdout
