"""`rig safety report [--run] [--results FILE] [--json]` and `rig safety docs [--check]`.

report: exit 0 when every active hazard has at least one passing test, 1 when one has none (or
the test run did not complete), 2 when there is no readable results file.
docs: write docs/safety/hazards.md from the registry and the tests' markers; with --check, exit 1
if the file differs instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# assurance.report (the safety case; it runs pytest in a subprocess) is imported by the handlers
# only: `rig daemon` goes through this module's parser, and the daemon's process has no use for
# the safety case (docs/architecture.md, "Layers").


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    safety = subparsers.add_parser(
        "safety",
        help="hazard table and traceability report",
        description="Hazards (assurance/hazards.py), their controls and the tests that verify them.",
    )
    actions = safety.add_subparsers(dest="safety_command", required=True, metavar="ACTION")

    report = actions.add_parser(
        "report",
        help="hazard -> controls -> tests -> pass/fail matrix",
        description="Print the traceability matrix from the results of the tests that carry "
        "hazard markers. Exit status: 0 every active hazard has a passing test, 1 one has "
        "none (or the run did not complete), 2 no readable results file.",
    )
    report.add_argument(
        "--run",
        action="store_true",
        help="run the hazard tests first (pytest -m hazard over tests/ and hil_tests/)",
    )
    report.add_argument(
        "--results",
        type=Path,
        metavar="FILE",
        help="results file to write (--run) or read (default .rig/hazard-results.json in the "
        "repository)",
    )
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(func=run_report)

    docs = actions.add_parser(
        "docs",
        help="write docs/safety/hazards.md from the registry",
        description="Render the hazard table from the registry and the tests' hazard markers.",
    )
    docs.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    docs.set_defaults(func=run_docs)


def _shown(path: Path) -> str:
    from assurance.report import REPO

    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def run_report(args: argparse.Namespace) -> int:
    from assurance.report import (
        DEFAULT_RESULTS,
        EXIT_NO_RESULTS,
        ResultsError,
        as_json,
        build_report,
        format_text,
        load_results,
        run_hazard_tests,
        scan_marked_tests,
    )

    results_path = (args.results or DEFAULT_RESULTS).resolve()
    if args.run:
        status = run_hazard_tests(results_path)
        print(f"pytest -m hazard finished with exit status {status}", file=sys.stderr)
    try:
        results = load_results(results_path)
    except ResultsError as exc:
        print(f"rig safety report: {exc}", file=sys.stderr)
        return EXIT_NO_RESULTS
    report = build_report(results, marked=scan_marked_tests())
    if args.json:
        print(json.dumps(as_json(report), indent=1))
    else:
        print(format_text(report))
    return report.exit_code


def run_docs(args: argparse.Namespace) -> int:
    from assurance.report import DOCS_PATH, render_hazards_markdown

    text = render_hazards_markdown()
    current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else None
    if args.check:
        if current != text:
            print(f"{_shown(DOCS_PATH)} is out of date: run `rig safety docs`", file=sys.stderr)
            return 1
        print(f"{_shown(DOCS_PATH)} is up to date")
        return 0
    if current != text:
        DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOCS_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(DOCS_PATH)}")
    else:
        print(f"{_shown(DOCS_PATH)} is up to date")
    return 0
