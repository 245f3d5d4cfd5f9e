"""The traceability report: hazard -> controls -> tests -> pass/fail -> measured detection time.

The hazards and their controls come from `assurance.hazards`; which test verifies which hazard
comes from the tests themselves (``@pytest.mark.hazard``, tests/hazard_plugin.py); whether they
pass comes from a results file the plugin writes (``pytest -m hazard --hazard-results FILE``).

The verdict: every active hazard needs at least one passing test. Pending hazards (subsystems not
built yet) are shown and do not count. The rendering of docs/safety/hazards.md lives here too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from assurance.hazards import HAZARD_IDS, HAZARDS, Hazard, Severity

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / ".rig" / "hazard-results.json"
RESULTS_FORMAT = "rig-hazard-results/1"
TEST_ROOTS = ("tests", "hil_tests")
DOCS_PATH = REPO / "docs" / "safety" / "hazards.md"

EXIT_OK = 0
EXIT_UNVERIFIED = 1
"""An active hazard has no passing test, or the test run did not complete."""
EXIT_NO_RESULTS = 2

PASSING = "passed"
COMPLETE_RUN_STATUSES = frozenset({0, 1, 5})
"""pytest exit statuses after which the results are complete (ok, tests failed, none selected)."""


class ResultsError(Exception):
    """The results file is missing or is not one the hazard plugin wrote."""


@dataclass(frozen=True)
class TestResult:
    nodeid: str
    hazards: tuple[str, ...]
    outcome: str
    duration_s: float
    detection_ms: float | None

    @property
    def passed(self) -> bool:
        return self.outcome == PASSING


@dataclass(frozen=True)
class Results:
    path: Path
    finished: float
    exitstatus: int
    tests: tuple[TestResult, ...]

    @property
    def complete(self) -> bool:
        return self.exitstatus in COMPLETE_RUN_STATUSES


def load_results(path: Path) -> Results:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(
            f"{path}: no results yet; run `rig safety report --run` (or pytest -m hazard "
            f"--hazard-results {path})"
        ) from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: cannot read the results: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ResultsError(f"{path}: not a hazard results file (format {RESULTS_FORMAT})")
    try:
        tests = tuple(
            TestResult(
                nodeid=str(t["nodeid"]),
                hazards=tuple(str(h) for h in t["hazards"]),
                outcome=str(t["outcome"]),
                duration_s=float(t["duration_s"]),
                detection_ms=None if t["detection_ms"] is None else float(t["detection_ms"]),
            )
            for t in data["tests"]
        )
        return Results(path, float(data["finished"]), int(data["exitstatus"]), tests)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: malformed hazard results ({exc!r})") from None


# -- which tests carry which hazard ids, read from the source ----------------------------------


def _hazard_ids_in(node: ast.expr) -> list[str] | None:
    """The ids of a ``pytest.mark.hazard(...)`` expression, None if it is something else."""
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if not (
        isinstance(func, ast.Attribute)
        and func.attr == "hazard"
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "mark"
    ):
        return None
    return [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _marks(expressions: Iterable[ast.expr]) -> list[str]:
    ids: list[str] = []
    for expression in expressions:
        items = expression.elts if isinstance(expression, ast.List | ast.Tuple) else [expression]
        for item in items:
            ids.extend(_hazard_ids_in(item) or [])
    return ids


def scan_marked_tests(repo: Path = REPO, roots: Sequence[str] = TEST_ROOTS) -> dict[str, list[str]]:
    """Test id (``path::name``, parameters left out) -> hazard ids, from the test files' source."""
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted((repo / root).rglob("test_*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            module_ids = _marks(
                stmt.value
                for stmt in tree.body
                if isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets)
            )
            relative = path.relative_to(repo).as_posix()
            for stmt in tree.body:
                if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                    if stmt.name.startswith("test"):
                        ids = module_ids + _marks(stmt.decorator_list)
                        if ids:
                            found[f"{relative}::{stmt.name}"] = sorted(set(ids))
                elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
                    class_ids = module_ids + _marks(stmt.decorator_list)
                    for method in stmt.body:
                        if isinstance(
                            method, ast.FunctionDef | ast.AsyncFunctionDef
                        ) and method.name.startswith("test"):
                            ids = class_ids + _marks(method.decorator_list)
                            if ids:
                                found[f"{relative}::{stmt.name}::{method.name}"] = sorted(set(ids))
    return found


def tests_by_hazard(marked: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    by_hazard: dict[str, list[str]] = {h.id: [] for h in HAZARDS}
    for test_id, ids in sorted(marked.items()):
        for hazard_id in ids:
            by_hazard.setdefault(hazard_id, []).append(test_id)
    return by_hazard


# -- the matrix --------------------------------------------------------------------------------


class Verdict(StrEnum):
    VERIFIED = "verified"
    FAILING = "failing"
    """Tests carry the id and ran, and none passed."""
    UNTESTED = "untested"
    """No test that carries the id has a result."""
    PENDING = "pending"


@dataclass(frozen=True)
class HazardRow:
    hazard: Hazard
    tests: tuple[TestResult, ...]
    not_run: tuple[str, ...] = ()
    """Tests that carry the id in the source but have no result in the file."""

    @property
    def verdict(self) -> Verdict:
        if self.hazard.pending:
            return Verdict.PENDING
        if any(t.passed for t in self.tests):
            return Verdict.VERIFIED
        return Verdict.FAILING if self.tests else Verdict.UNTESTED


@dataclass(frozen=True)
class Report:
    rows: tuple[HazardRow, ...]
    results: Results
    unknown: tuple[TestResult, ...] = field(default=())
    """Results naming ids that are not in the registry (a stale results file)."""

    @property
    def unverified(self) -> list[HazardRow]:
        return [r for r in self.rows if r.verdict in (Verdict.FAILING, Verdict.UNTESTED)]

    @property
    def exit_code(self) -> int:
        if self.unverified or not self.results.complete:
            return EXIT_UNVERIFIED
        return EXIT_OK


def _base_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def build_report(
    results: Results,
    hazards: Sequence[Hazard] = HAZARDS,
    marked: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """Join the registry with the results (and, if given, the statically marked tests)."""
    rows = []
    ran = {_base_id(t.nodeid) for t in results.tests}
    expected = tests_by_hazard(marked or {})
    for hazard in hazards:
        tests = tuple(t for t in results.tests if hazard.id in t.hazards)
        not_run = tuple(test_id for test_id in expected.get(hazard.id, []) if test_id not in ran)
        rows.append(HazardRow(hazard, tests, not_run))
    unknown = tuple(t for t in results.tests if not set(t.hazards) <= HAZARD_IDS)
    return Report(tuple(rows), results, unknown)


# -- output -------------------------------------------------------------------------------------

_VERDICT_TEXT = {
    Verdict.VERIFIED: "VERIFIED",
    Verdict.FAILING: "NO PASSING TEST YET (its tests fail)",
    Verdict.UNTESTED: "NO PASSING TEST YET",
    Verdict.PENDING: "PENDING",
}
_OUTCOME_TEXT = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _when(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_s))


def format_text(report: Report) -> str:
    results = report.results
    lines = [
        f"Hazard traceability: {len(report.rows)} hazards; results of {_when(results.finished)} "
        f"from {results.path} ({len(results.tests)} tests, pytest exit status "
        f"{results.exitstatus})",
        "",
    ]
    for row in report.rows:
        hazard = row.hazard
        verdict = _VERDICT_TEXT[row.verdict]
        if row.verdict is Verdict.PENDING:
            verdict = f"PENDING: {hazard.pending_reason}"
        elif row.verdict is Verdict.VERIFIED:
            passing = sum(t.passed for t in row.tests)
            verdict = f"VERIFIED ({passing} of {len(row.tests)} tests pass)"
        lines.append(f"{hazard.id}  {hazard.title}  [{hazard.severity}]  {verdict}")
        lines.append("    controls:")
        for control in hazard.controls:
            planned = "  (planned)" if control.planned else ""
            lines.append(f"      {control.layer:<15} {control.code}{planned}")
        if row.tests or row.not_run:
            lines.append("    tests:")
        else:
            lines.append("    tests: none carries this id yet")
        for test in row.tests:
            outcome = _OUTCOME_TEXT.get(test.outcome, test.outcome.upper())
            detection = (
                "" if test.detection_ms is None else f"  detection {test.detection_ms:.1f} ms"
            )
            lines.append(f"      {outcome:<6} {test.nodeid}  {test.duration_s:.2f} s{detection}")
        for test_id in row.not_run:
            lines.append(f"      {'-':<6} {test_id}  (not in the results: not run)")
        lines.append("")
    for test in report.unknown:
        lines.append(f"warning: {test.nodeid} names hazard ids not in the registry: {test.hazards}")
    if not results.complete:
        lines.append(
            f"warning: the test run did not complete (pytest exit status {results.exitstatus})"
        )
    counts = {v: [r.hazard.id for r in report.rows if r.verdict is v] for v in Verdict}
    failed_tests = sorted({t.nodeid for r in report.rows for t in r.tests if not t.passed})
    lines.append(
        f"Summary: {len(counts[Verdict.VERIFIED])} active hazards verified; "
        f"{len(counts[Verdict.UNTESTED]) + len(counts[Verdict.FAILING])} without a passing test"
        f" ({' '.join(counts[Verdict.UNTESTED] + counts[Verdict.FAILING]) or 'none'}); "
        f"{len(counts[Verdict.PENDING])} pending ({' '.join(counts[Verdict.PENDING]) or 'none'})"
        f"; {len(failed_tests)} hazard tests not passing."
    )
    if report.exit_code == EXIT_OK:
        lines.append("Exit 0: every active hazard has at least one passing test.")
    else:
        lines.append(
            f"Exit {report.exit_code}: every active hazard needs at least one passing test."
        )
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    results = report.results
    return {
        "results_file": str(results.path),
        "results_finished": results.finished,
        "pytest_exitstatus": results.exitstatus,
        "exit_code": report.exit_code,
        "hazards": [
            {
                "id": row.hazard.id,
                "title": row.hazard.title,
                "severity": row.hazard.severity.label,
                "status": row.hazard.status.value,
                "pending_reason": row.hazard.pending_reason,
                "verdict": row.verdict.value,
                "controls": [
                    {
                        "layer": c.layer.value,
                        "code": c.code,
                        "does": c.does,
                        "planned": c.planned,
                    }
                    for c in row.hazard.controls
                ],
                "tests": [
                    {
                        "nodeid": t.nodeid,
                        "outcome": t.outcome,
                        "duration_s": t.duration_s,
                        "detection_ms": t.detection_ms,
                    }
                    for t in row.tests
                ],
                "not_run": list(row.not_run),
            }
            for row in report.rows
        ],
        "unverified": [row.hazard.id for row in report.unverified],
    }


# -- running the tests ------------------------------------------------------------------------


def run_hazard_tests(results_path: Path, pytest_args: Sequence[str] = ()) -> int:
    """Run the tests that carry hazard markers, writing `results_path`; pytest's exit status.

    pytest's own output goes to stderr, so that stdout holds only the report.
    """
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "hazard",
        f"--hazard-results={results_path}",
        "-q",
        *pytest_args,
        *TEST_ROOTS,
    ]
    return subprocess.run(command, cwd=REPO, stdout=sys.stderr, check=False).returncode


# -- docs/safety/hazards.md ---------------------------------------------------------------------

_INTRO = """\
# Hazards and their controls

Generated from `assurance/hazards.py` (the registry) and the tests' `@pytest.mark.hazard`
markers by `rig safety docs`; `tests/safety/test_hazard_report.py` fails when this file and
the registry disagree. Do not edit by hand.

## Method

The terms are those of ISO 14971: a **hazard** is a potential source of harm; its **causes**
are the sequences of events that lead to a hazardous situation; the **harm** is the injury
that may follow; a **risk control** is a measure that prevents the sequence or limits the
harm. Each control names the code that implements it, and each hazard names the automated
tests that verify its controls: a test carries `@pytest.mark.hazard("Hxx")` only if it fails
when that control is removed (a test that cannot fail when its control is removed is a
defect).

**Probability.** None is estimated. IEC 62304 asks that a failure of the software be assumed
to occur: each hazard is judged by the severity of its harm, and its risk is reduced by
controls, not by an argument that the software will not fail.

**Software safety class.** A pump that can perforate a duct makes the rig software class C
territory (design notes, `clinical.md`, "Software lifecycle"): serious injury is
possible. Software-internal mitigations (supervision, the host interlock) do not lower that
class; independent external controls do. That is why the hazards of fluid motion have
**device-side** controls that work when the host is dead or hung: the pump's safe-mode
timeout, the I/O board's heartbeat watchdog and its hard pressure cut-off, both acting on the
pump's power relay, and the board's hardware e-stop. The code named for a device-side control
is the host call that arms it (the emulators in `drivers/sim/` stand in for the firmware).

**Layers** (`rig.md`, "Safety, in layers"): *device-side*; *host interlock* (the one choke
point to the actuators, faults latch, recovery at zero flow); *supervision* (the fluid loop's
checks that pressure follows flow, volume caps, link and data-freshness supervision); and
*evidence* (this table and `rig safety report`).

**Verification.** `rig safety report --run` runs the marked tests (`pytest -m hazard` over
`tests/` and `hil_tests/`) and prints hazard -> controls -> tests -> pass/fail, with the
detection time each fault-injection test measured; it exits non-zero while any active hazard
lacks a passing test. Pending hazards belong to subsystems not built yet and are listed with
their planned controls. A control marked *planned* is being built; hazards whose controls are
all planned show "no passing test yet" until their tests exist and pass.
"""


def _severity_table() -> list[str]:
    lines = ["## Severity scale", "", "| rank | severity | meaning |", "|---|---|---|"]
    lines += [f"| {s.rank} | {s.label} | {s.meaning} |" for s in Severity]
    return [*lines, ""]


def render_hazards_markdown(marked: Mapping[str, Sequence[str]] | None = None) -> str:
    """The text of docs/safety/hazards.md (`marked`: test id -> ids; default: scan the tests)."""
    by_hazard = tests_by_hazard(scan_marked_tests() if marked is None else marked)
    lines = [_INTRO, *_severity_table()]
    lines += [
        "## Summary",
        "",
        "| id | hazard | severity | status | verifying tests |",
        "|---|---|---|---|---|",
    ]
    for hazard in HAZARDS:
        status = f"pending: {hazard.pending_reason}" if hazard.pending else "active"
        count = len(by_hazard.get(hazard.id, []))
        lines.append(f"| {hazard.id} | {hazard.title} | {hazard.severity} | {status} | {count} |")
    lines.append("")
    for hazard in HAZARDS:
        lines += [f"## {hazard.id}: {hazard.title}", ""]
        if hazard.pending:
            lines += [f"**Status: pending: {hazard.pending_reason}.**", ""]
        lines.append(f"- **Severity:** {hazard.severity} ({hazard.severity.meaning})")
        lines.append("- **Causes:**")
        lines += [f"  - {cause}" for cause in hazard.causes]
        lines.append(f"- **Harm:** {hazard.harm}")
        lines += ["", "| layer | control | code |", "|---|---|---|"]
        for control in hazard.controls:
            does = f"*planned:* {control.does}" if control.planned else control.does
            lines.append(f"| {control.layer} | {does} | `{control.code}` |")
        lines += ["", "Verifying tests:", ""]
        tests = by_hazard.get(hazard.id, [])
        lines += [f"- `{test_id}`" for test_id in tests] or ["- none yet"]
        lines.append("")
    return "\n".join(lines)
