"""Video as background work: every thread of the process below the fluid loop, those started
before the call (numpy's) and after it (OpenCV's, ours)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling")

_PROBE = textwrap.dedent(
    """
    import json, os, threading
    from pathlib import Path
    from drivers.background import run_in_background

    stop = threading.Event()
    before = threading.Thread(target=stop.wait)
    before.start()
    run_in_background()
    after = threading.Thread(target=stop.wait)
    after.start()
    threads = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rpartition(")")[2].split()
        threads[task.name] = {"nice": int(fields[16]), "policy": int(fields[38])}
    stop.set()
    print(json.dumps(threads))
    """
)


def test_every_thread_of_the_process_is_background_work() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=30
    )
    threads = json.loads(out.stdout)
    assert len(threads) >= 3  # the main thread, one started before the call, one after
    for tid, sched in threads.items():
        assert sched["policy"] == os.SCHED_IDLE, f"thread {tid}: {sched}"
