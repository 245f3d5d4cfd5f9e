"""The daemon's event loop as real-time work (drivers/realtime.py): its own thread SCHED_FIFO, the
threads it shares the GIL with just below it, its watcher above it, and no process it starts real-time."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from drivers import realtime

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling")

_PROBE = textwrap.dedent(
    """
    import json, os, subprocess, sys, threading, time
    from drivers.realtime import join_control_loop, run_as_control_loop

    def policy():
        return [
            os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK,
            os.sched_getparam(0).sched_priority,
        ]

    out = {"how": run_as_control_loop(), "switch_s": sys.getswitchinterval(), "loop": policy()}

    def thread(key, offset):
        if offset is not None:
            join_control_loop(offset)
        out[key] = policy()

    for key, offset in (("plain", None), ("joined", -1), ("watcher", 1)):
        started = threading.Thread(target=thread, args=(key, offset))
        started.start()
        started.join()
    from rig.events.journal import Journal

    journal = Journal(None, on_fault=print)  # its threads: the writer, and a reader when asked
    out["journal_reader"] = journal._reader.submit(policy).result()
    time.sleep(0.2)  # the writer has started and set itself
    tid = journal._writer.native_id
    out["journal_writer"] = [
        os.sched_getscheduler(tid) & ~os.SCHED_RESET_ON_FORK,
        os.sched_getparam(tid).sched_priority,
    ]
    journal.close()
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
        capture_output=True, text=True, check=True,
    )
    out["child"] = int(child.stdout)
    print(json.dumps(out))
    """
)


def test_the_loop_is_real_time_and_nothing_it_starts_is_unless_it_asks() -> None:
    out = json.loads(
        subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    )
    if not out["how"].startswith("SCHED_FIFO"):
        pytest.skip(f"real-time scheduling is not permitted here: {out['how']}")
    fifo, priority = os.SCHED_FIFO, realtime.LOOP_PRIORITY
    assert out["how"] == f"SCHED_FIFO {priority}"
    assert out["switch_s"] == realtime.SWITCH_INTERVAL_S
    assert out["loop"] == [fifo, priority]
    assert out["joined"] == [fifo, priority - 1]  # the executor's transfers, just below it
    assert out["watcher"] == [fifo, priority + 1]  # the loop-stall guard, above a spinning loop
    # the journal's threads: the loop awaits its reads, and its writer shares the GIL
    assert out["journal_reader"] == [fifo, priority - 1]
    assert out["journal_writer"] == [fifo, priority - 1]
    assert out["plain"] == [os.SCHED_OTHER, 0]  # any other thread: ordinary work
    assert out["child"] == os.SCHED_OTHER  # the camera process starts ordinary, then idles


def test_where_real_time_is_refused_the_loop_runs_on_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(realtime, "_priority", None)
    switch_s = sys.getswitchinterval()
    try:
        with caplog.at_level(logging.WARNING):
            how = realtime.run_as_control_loop()
        realtime.join_control_loop(realtime.WATCHER_OFFSET)  # nothing to join: no error, no change
    finally:
        sys.setswitchinterval(switch_s)
    assert how == "ordinary (SCHED_FIFO refused: Operation not permitted)"
    assert realtime._priority is None
    assert "LimitRTPRIO" in caplog.text
