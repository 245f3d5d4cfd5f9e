#!/usr/bin/env bash
# Mutation testing of the safety code (docs/safety/mutation.md): mutmut over the interlock, its
# states and rules, the self-test, the stop supervisor and the plausibility checks, each mutant
# checked by the fast unit tests that cover it. Prints the score.
#
#   scripts/mutation.sh            a fresh run (deletes mutants/ first); 22-27 minutes on 2 shared cores
#   scripts/mutation.sh --keep     reuse mutants/ from the last run (only untested mutants run)
#   MUTATION_JOBS=1 scripts/...    worker processes (default 2)
#
# What is mutated and which tests run is in pyproject.toml, [tool.mutmut]. Not part of
# `./run test` or CI: too slow. Needs the .venv that `./run test` creates; installs mutmut into it
# if missing. Afterwards: `.venv/bin/mutmut results` lists the survivors, `.venv/bin/mutmut show
# NAME` shows one.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
JOBS=${MUTATION_JOBS:-2}
[ -x "$VENV/bin/python" ] || { echo "no $VENV: run ./run test first" >&2; exit 1; }
"$VENV/bin/python" -c 'import mutmut' 2>/dev/null || "$VENV/bin/python" -m pip install -q 'mutmut>=3.3,<4'

if [ "${1:-}" != "--keep" ]; then
  rm -rf mutants
fi

mkdir -p mutants
start=$(date +%s)
# mutmut redraws a progress line per mutant: into the log, not the terminal.
status=0
nice -n 10 "$VENV/bin/mutmut" run --max-children "$JOBS" >mutants/run.log 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  tail -n 40 mutants/run.log 2>/dev/null || true
  echo "mutmut run failed (exit $status)" >&2
  exit "$status"
fi
"$VENV/bin/mutmut" export-cicd-stats >/dev/null
elapsed=$(( $(date +%s) - start ))

"$VENV/bin/python" - "$elapsed" <<'PY'
import json
import sys
from collections import Counter
from pathlib import Path

# Same grouping as mutmut's own (mutmut.stats.status_by_exit_code).
KILLED, SURVIVED, NO_TESTS, TIMEOUT = {1, 3, 37}, {0}, {5, 33}, {36, -24, 24, 152, 255}

print(f"{'file':32} {'killed':>7} {'survived':>9} {'no tests':>9} {'timeout':>8} {'total':>6} {'score':>7}")
totals: Counter[str] = Counter()
for meta in sorted(Path("mutants").glob("rig/**/*.py.meta")):
    codes = json.loads(meta.read_text())["exit_code_by_key"].values()
    c: Counter[str] = Counter()
    for code in codes:
        c["killed" if code in KILLED else "survived" if code in SURVIVED else
          "no tests" if code in NO_TESTS else "timeout" if code in TIMEOUT else "other"] += 1
    c["total"] = len(codes)
    totals.update(c)
    detected = c["killed"] + c["timeout"]
    name = str(meta.relative_to("mutants"))[: -len(".meta")]
    print(f"{name:32} {c['killed']:7} {c['survived']:9} {c['no tests']:9} {c['timeout']:8} "
          f"{c['total']:6} {100 * detected / max(c['total'], 1):6.1f}%")
detected = totals["killed"] + totals["timeout"]
print(f"{'all':32} {totals['killed']:7} {totals['survived']:9} {totals['no tests']:9} "
      f"{totals['timeout']:8} {totals['total']:6} {100 * detected / max(totals['total'], 1):6.1f}%")
if totals["other"]:
    print(f"{totals['other']} mutants with another outcome (suspicious, segfault, not checked)")
print(f"mutation score (killed + timeout) / total = {detected}/{totals['total']}"
      f" = {100 * detected / max(totals['total'], 1):.1f}%   [{sys.argv[1]} s]")
PY
