"""The hazard registry, docs/safety/hazards.md, `rig safety report` and the pytest hazard plugin."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assurance.hazards import HAZARD_IDS, HAZARDS, Hazard, Layer, Severity, Status, hazard
from assurance.report import (
    DOCS_PATH,
    EXIT_NO_RESULTS,
    EXIT_OK,
    EXIT_UNVERIFIED,
    REPO,
    RESULTS_FORMAT,
    ResultsError,
    Verdict,
    build_report,
    format_text,
    load_results,
    render_hazards_markdown,
    scan_marked_tests,
)
from rig.cli.main import main

PENDING: dict[str, str] = {}
# A nested pytest takes a core for seconds (the collection imports everything): at the lowest
# priority, so that it never starves the other test worker's rig (its simulator then skips
# board samples; its camera process, SCHED_IDLE, gets nothing and its video is lost).
BACKGROUND = ["nice", "-n", "19"]


# --- the registry -----------------------------------------------------------------------------


def test_ids_are_unique_and_run_from_h01_in_order() -> None:
    ids = [h.id for h in HAZARDS]
    assert len(ids) >= 24
    assert ids == [f"H{n:02d}" for n in range(1, len(ids) + 1)]
    assert set(ids) == HAZARD_IDS


def test_every_hazard_is_described_in_iso_14971_terms() -> None:
    for h in HAZARDS:
        assert h.title and h.harm and h.causes and all(h.causes), h.id
        assert isinstance(h.severity, Severity), h.id
        assert h.controls, f"{h.id} has no control, not even a planned one"


def test_pending_hazards_are_the_unbuilt_subsystems_and_say_so() -> None:
    pending = {h.id: h for h in HAZARDS if h.pending}
    assert set(pending) == set(PENDING)
    for hazard_id, h in pending.items():
        assert h.pending_reason == f"{PENDING[hazard_id]} not built yet"
    for h in HAZARDS:
        if h.status is Status.ACTIVE:
            assert h.pending_reason is None, h.id


def _resolve(code: str) -> object:
    module_name, _, qualname = code.partition(":")
    target: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("h", HAZARDS, ids=lambda h: h.id)
def test_every_implemented_control_names_code_that_exists(h: Hazard) -> None:
    for control in h.controls:
        assert control.does, (h.id, control)
        assert control.layer in Layer
        if control.planned:
            continue
        assert re.fullmatch(r"[a-z_][a-z0-9_.]*:[A-Za-z_][\w.]*", control.code), control.code
        try:
            _resolve(control.code)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{h.id}: control {control.code!r} does not exist ({exc})")


def test_pending_hazards_have_only_planned_controls() -> None:
    for h in HAZARDS:
        if h.pending:
            assert all(c.planned for c in h.controls), h.id


def test_fluid_hazards_have_an_independent_device_side_control() -> None:
    """Class C reasoning: the hazards of fluid moving unsupervised need a control outside the
    host software (clinical.md: only independent external controls lower the class)."""
    for hazard_id in ("H01", "H07", "H08", "H09", "H10", "H11", "H16"):
        layers = {c.layer for c in hazard(hazard_id).controls if not c.planned}
        assert Layer.DEVICE in layers, hazard_id


def test_unknown_id_lookup_names_the_known_range() -> None:
    with pytest.raises(KeyError, match=rf"H01\.\.H{len(HAZARDS):02d}"):
        hazard("H99")


# --- the docs ---------------------------------------------------------------------------------


def test_committed_hazard_table_is_the_rendering_of_the_registry() -> None:
    assert DOCS_PATH.read_text(encoding="utf-8") == render_hazards_markdown(), (
        "docs/safety/hazards.md is out of date: run `rig safety docs`"
    )


def test_docs_name_every_hazard_its_severity_and_code() -> None:
    text = render_hazards_markdown({})
    for h in HAZARDS:
        assert f"## {h.id}: {h.title}" in text
        for control in h.controls:
            assert f"`{control.code}`" in text
    assert "IEC 62304" in text and "ISO 14971" in text and "class C" in text


def test_static_scan_agrees_with_what_pytest_collects() -> None:
    """The docs list tests from the source; pytest's own collection must give the same list."""
    out = subprocess.run(
        [
            *BACKGROUND,
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "hazard",
            "tests",
            "hil_tests",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    collected = {
        line.split("[", 1)[0]
        for line in out.stdout.splitlines()
        if line.startswith(("tests/", "hil_tests/")) and "::" in line
    }
    assert collected == set(scan_marked_tests())


def test_scan_reads_function_class_and_module_marks(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n"
        "pytestmark = [pytest.mark.system, pytest.mark.hazard('H08')]\n"
        "@pytest.mark.hazard('H02', 'H01')\n"
        "async def test_a(): pass\n"
        "def test_b(): pass\n"
        "def helper(): pass\n"
        "@pytest.mark.hazard('H11')\n"
        "class TestC:\n"
        "    @pytest.mark.hazard('H10')\n"
        "    def test_d(self): pass\n"
    )
    assert scan_marked_tests(tmp_path, ("tests",)) == {
        "tests/test_x.py::test_a": ["H01", "H02", "H08"],
        "tests/test_x.py::test_b": ["H08"],
        "tests/test_x.py::TestC::test_d": ["H08", "H10", "H11"],
    }


# --- the report -------------------------------------------------------------------------------


def write_results(
    path: Path, tests: list[tuple[str, list[str], str, float | None]], exitstatus: int = 0
) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": RESULTS_FORMAT,
                "started": 1.0,
                "finished": 2.0,
                "exitstatus": exitstatus,
                "rootdir": "/x",
                "tests": [
                    {
                        "nodeid": nodeid,
                        "hazards": ids,
                        "outcome": outcome,
                        "duration_s": 0.5,
                        "detection_ms": detection,
                    }
                    for nodeid, ids, outcome, detection in tests
                ],
            }
        )
    )
    return path


ACTIVE = [h.id for h in HAZARDS if not h.pending]


def all_active_passing() -> list[tuple[str, list[str], str, float | None]]:
    return [(f"tests/test_{i}.py::test_ok", [i], "passed", None) for i in ACTIVE]


def test_every_active_hazard_passing_exits_zero_and_pending_do_not_count(tmp_path: Path) -> None:
    report = build_report(load_results(write_results(tmp_path / "r.json", all_active_passing())))
    assert report.exit_code == EXIT_OK
    verdicts = {row.hazard.id: row.verdict for row in report.rows}
    assert {k for k, v in verdicts.items() if v is Verdict.PENDING} == set(PENDING)
    assert "Exit 0" in format_text(report)


def test_an_active_hazard_without_a_test_exits_one(tmp_path: Path) -> None:
    tests = [t for t in all_active_passing() if t[1] != ["H09"]]
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)))
    assert report.exit_code == EXIT_UNVERIFIED
    assert [row.hazard.id for row in report.unverified] == ["H09"]
    text = format_text(report)
    assert re.search(r"^H09 .* NO PASSING TEST YET$", text, re.M)


def test_an_active_hazard_whose_only_test_fails_exits_one(tmp_path: Path) -> None:
    tests = [t if t[1] != ["H02"] else (t[0], t[1], "failed", None) for t in all_active_passing()]
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)))
    assert report.exit_code == EXIT_UNVERIFIED
    (row,) = report.unverified
    assert row.hazard.id == "H02" and row.verdict is Verdict.FAILING
    assert "FAIL   tests/test_H02.py::test_ok" in format_text(report)


@pytest.mark.parametrize("outcome", ["skipped", "error", "xfailed", "xpassed"])
def test_only_a_pass_counts(tmp_path: Path, outcome: str) -> None:
    tests = [t if t[1] != ["H04"] else (t[0], t[1], outcome, None) for t in all_active_passing()]
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)))
    assert [row.hazard.id for row in report.unverified] == ["H04"]


def test_one_passing_test_of_several_is_enough(tmp_path: Path) -> None:
    tests = [*all_active_passing(), ("tests/test_y.py::test_bad", ["H01", "H02"], "failed", None)]
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)))
    assert report.exit_code == EXIT_OK


def test_an_incomplete_run_is_not_a_pass(tmp_path: Path) -> None:
    path = write_results(tmp_path / "r.json", all_active_passing(), exitstatus=2)
    report = build_report(load_results(path))
    assert report.exit_code == EXIT_UNVERIFIED
    assert "did not complete" in format_text(report)


def test_detection_time_and_not_run_tests_are_shown(tmp_path: Path) -> None:
    tests = [*all_active_passing(), ("tests/test_s.py::test_wall", ["H02"], "passed", 7.49)]
    marked = {"tests/test_s.py::test_wall": ["H02"], "tests/test_s.py::test_never": ["H02"]}
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)), marked=marked)
    text = format_text(report)
    assert re.search(r"PASS +tests/test_s\.py::test_wall .*detection 7\.5 ms", text)
    assert "tests/test_s.py::test_never  (not in the results: not run)" in text


def test_results_naming_unknown_ids_are_warned_about(tmp_path: Path) -> None:
    tests = [*all_active_passing(), ("tests/test_old.py::test_x", ["H99"], "passed", None)]
    report = build_report(load_results(write_results(tmp_path / "r.json", tests)))
    assert "names hazard ids not in the registry" in format_text(report)


def test_missing_or_foreign_results_file_is_a_results_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="--run"):
        load_results(tmp_path / "absent.json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(ResultsError, match="not a hazard results file"):
        load_results(tmp_path / "other.json")


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_results(tmp_path / "good.json", all_active_passing())
    assert main(["safety", "report", "--results", str(good)]) == EXIT_OK
    tests = [t for t in all_active_passing() if t[1] != ["H21"]]
    bad = write_results(tmp_path / "bad.json", tests)
    capsys.readouterr()
    assert main(["safety", "report", "--results", str(bad), "--json"]) == EXIT_UNVERIFIED
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == EXIT_UNVERIFIED and data["unverified"] == ["H21"]
    h21 = next(h for h in data["hazards"] if h["id"] == "H21")
    assert h21["verdict"] == "untested" and h21["controls"]
    assert main(["safety", "report", "--results", str(tmp_path / "absent.json")]) == (
        EXIT_NO_RESULTS
    )


def test_cli_docs_check_passes_on_the_committed_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["safety", "docs", "--check"]) == 0


# --- the pytest plugin ------------------------------------------------------------------------

SAMPLE_TESTS = """
import pytest

pytestmark = pytest.mark.hazard("H08")

@pytest.mark.hazard("H02", "H01")
def test_passes(hazard_evidence):
    hazard_evidence.detection_ms(7.25)

@pytest.mark.hazard("H04")
def test_fails():
    assert False

@pytest.mark.hazard("H05")
def test_skips():
    pytest.skip("not here")

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

@pytest.mark.hazard("H10")
def test_errors(broken):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    pass
"""


def run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            *BACKGROUND,
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.hazard_plugin",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_plugin_writes_outcome_duration_and_detection_of_each_marked_test(tmp_path: Path) -> None:
    out = run_pytest(tmp_path, SAMPLE_TESTS, "--hazard-results", "out/r.json", "test_sample.py")
    assert out.returncode == 1, out.stdout + out.stderr
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["format"] == RESULTS_FORMAT and data["exitstatus"] == 1
    tests = {t["nodeid"]: t for t in data["tests"]}
    assert {k: (v["hazards"], v["outcome"]) for k, v in tests.items()} == {
        "test_sample.py::test_passes": (["H01", "H02", "H08"], "passed"),
        "test_sample.py::test_fails": (["H04", "H08"], "failed"),
        "test_sample.py::test_skips": (["H05", "H08"], "skipped"),
        "test_sample.py::test_errors": (["H08", "H10"], "error"),
        "test_sample.py::test_param[1]": (["H08"], "passed"),
        "test_sample.py::test_param[2]": (["H08"], "passed"),
    }
    assert tests["test_sample.py::test_passes"]["detection_ms"] == 7.25
    assert tests["test_sample.py::test_fails"]["detection_ms"] is None
    assert all(t["duration_s"] >= 0 for t in data["tests"])
    assert load_results(tmp_path / "out" / "r.json").tests


def test_plugin_leaves_unmarked_tests_out_and_selects_with_m_hazard(tmp_path: Path) -> None:
    source = (
        "import pytest\n"
        "@pytest.mark.hazard('H01')\n"
        "def test_marked(): pass\n"
        "def test_plain(): pass\n"
    )
    out = run_pytest(tmp_path, source, "-m", "hazard", "--hazard-results", "r.json", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 1 deselected" in out.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert [t["nodeid"] for t in data["tests"]] == ["test_sample.py::test_marked"]


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("@pytest.mark.hazard('H99')", "unknown hazard id 'H99'"),
        ("@pytest.mark.hazard()", "names no hazard id"),
        ("@pytest.mark.hazard('h01')", "unknown hazard id 'h01'"),
    ],
)
def test_a_bad_hazard_id_is_a_collection_error(tmp_path: Path, mark: str, message: str) -> None:
    source = f"import pytest\n{mark}\ndef test_x(): pass\n"
    out = run_pytest(tmp_path, source, "-q")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "ERROR collecting test_sample.py" in out.stdout or "error" in out.stdout.lower()
    assert message in out.stdout


def test_hazard_evidence_needs_a_hazard_marker(tmp_path: Path) -> None:
    source = "def test_x(hazard_evidence):\n    hazard_evidence.detection_ms(1.0)\n"
    out = run_pytest(tmp_path, source, "-q")
    assert out.returncode == 1
    assert "hazard_evidence is for tests that carry @pytest.mark.hazard" in out.stdout


def test_detection_ms_refuses_what_is_not_a_finite_number(tmp_path: Path) -> None:
    source = (
        "import pytest\n"
        "@pytest.mark.hazard('H02')\n"
        "def test_x(hazard_evidence):\n"
        "    with pytest.raises(ValueError):\n"
        "        hazard_evidence.detection_ms(float('nan'))\n"
        "    with pytest.raises(TypeError):\n"
        "        hazard_evidence.detection_ms(None)\n"
    )
    out = run_pytest(tmp_path, source, "-q")
    assert out.returncode == 0, out.stdout + out.stderr
