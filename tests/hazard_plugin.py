"""Hazard traceability for pytest: which tests verify which hazard's controls, and their results.

Registered from the root conftest.py (``pytest_plugins``), so it works for tests/ and hil_tests/.

- The marker ``@pytest.mark.hazard("H01", "H02")`` says that the test verifies a control of
  those hazards (assurance/hazards.py): it must fail if that control is removed. Unknown ids,
  or a marker without ids, are collection errors.
- The fixture ``hazard_evidence`` lets a fault-injection test record what it measured:
  ``hazard_evidence.detection_ms(12.3)``, the time from the fault to the safe state.
- ``--hazard-results FILE`` writes, at the end of the session, one JSON record per test that
  carries a hazard marker: node id, hazard ids, outcome, duration, detection time.
  `rig safety report` reads that file (``-m hazard`` selects just those tests).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assurance.hazards import HAZARD_IDS

MARKER = "hazard"
RESULTS_FORMAT = "rig-hazard-results/1"


class HazardEvidence:
    """What a fault-injection test measured; one per test (the `hazard_evidence` fixture)."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.detection_time_ms: float | None = None

    def detection_ms(self, value: float) -> None:
        """Record the measured time from the injected fault to the safe state, in ms."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"detection_ms expects a number of milliseconds, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"detection_ms: {value!r} is not a finite time")
        self.detection_time_ms = float(value)


@dataclass
class _Record:
    nodeid: str
    hazards: list[str]
    outcome: str = "passed"
    duration_s: float = 0.0
    detection_ms: float | None = None
    phases: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "hazards": self.hazards,
            "outcome": self.outcome,
            "duration_s": round(self.duration_s, 4),
            "detection_ms": None if self.detection_ms is None else round(self.detection_ms, 3),
        }


@dataclass
class _Recorder:
    path: Path | None
    started: float = field(default_factory=time.time)
    records: dict[str, _Record] = field(default_factory=dict)


_RECORDER = pytest.StashKey[_Recorder]()
_EVIDENCE = pytest.StashKey[HazardEvidence]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hazard", "hazard traceability (rig safety report)")
    group.addoption(
        "--hazard-results",
        metavar="FILE",
        type=Path,
        default=None,
        help="write the results of the tests that carry hazard markers to this JSON file",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hazard(*ids): the test verifies a risk control of these hazards (assurance/hazards.py)",
    )
    config.stash[_RECORDER] = _Recorder(config.getoption("--hazard-results"))


def hazard_ids_of(item: pytest.Item) -> list[str]:
    """The hazard ids an item carries, in order, each once (module, class and function marks)."""
    ids: list[str] = []
    for marker in item.iter_markers(MARKER):
        for value in marker.args:
            if value not in ids:
                ids.append(value)
    return sorted(ids)


def _marker_problems(item: pytest.Item) -> Iterator[str]:
    for marker in item.iter_markers(MARKER):
        if not marker.args:
            yield f"{item.nodeid}: @pytest.mark.hazard() names no hazard id"
        if marker.kwargs:
            yield f"{item.nodeid}: @pytest.mark.hazard takes ids only, not {sorted(marker.kwargs)}"
        for value in marker.args:
            if value not in HAZARD_IDS:
                yield (
                    f"{item.nodeid}: unknown hazard id {value!r} in @pytest.mark.hazard "
                    f"(the ids are those of assurance/hazards.py: H01..H{len(HAZARD_IDS):02d})"
                )


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Turn a bad hazard marker into an error collecting the file that holds it."""
    report = yield
    if report.passed:
        problems = [
            problem
            for node in report.result
            if isinstance(node, pytest.Item)
            for problem in _marker_problems(node)
        ]
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
    return report


@pytest.fixture
def hazard_evidence(request: pytest.FixtureRequest) -> HazardEvidence:
    """Record a fault-injection test's measured detection time: ``.detection_ms(value)``."""
    node = request.node
    if not isinstance(node, pytest.Item) or not hazard_ids_of(node):
        pytest.fail("hazard_evidence is for tests that carry @pytest.mark.hazard(...)")
    evidence = HazardEvidence(node.nodeid)
    node.stash[_EVIDENCE] = evidence
    return evidence


def _phase_outcome(report: pytest.TestReport) -> str:
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.failed:
        return "error"
    return "skipped" if report.skipped else "passed"


_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 2, "failed": 3, "error": 4}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    recorder = item.config.stash.get(_RECORDER, None)
    ids = hazard_ids_of(item)
    if recorder is None or not ids:
        return report
    record = recorder.records.setdefault(item.nodeid, _Record(item.nodeid, ids))
    record.phases.add(report.when)
    record.duration_s += report.duration
    outcome = _phase_outcome(report)
    if _RANK[outcome] > _RANK[record.outcome]:
        record.outcome = outcome
    evidence = item.stash.get(_EVIDENCE, None)
    if evidence is not None:
        record.detection_ms = evidence.detection_time_ms
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    recorder = session.config.stash.get(_RECORDER, None)
    if recorder is None or recorder.path is None:
        return
    records = [
        r.as_dict()
        for r in recorder.records.values()
        if "call" in r.phases or r.outcome != "passed"
    ]
    document = {
        "format": RESULTS_FORMAT,
        "started": recorder.started,
        "finished": time.time(),
        "exitstatus": int(exitstatus),
        "rootdir": str(session.config.rootpath),
        "tests": records,
    }
    path = recorder.path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
