"""A launcher that is killed outright takes its broker, simulator and daemon with it
(rig/children.py): they used to run on for as long as nothing else stopped them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rig.children import tied_to

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

LAUNCHER = """
import asyncio, json, sys
from pathlib import Path
from rig.config import DEFAULT_PROFILE, load_profile
from rig.launcher import start_sim_rig

async def main() -> None:
    rig = await start_sim_rig(DEFAULT_PROFILE, load_profile(DEFAULT_PROFILE), run_dir=Path(sys.argv[1]))
    assert rig.broker is not None and rig.daemon is not None
    print(json.dumps({"broker": rig.broker.pid, "simulator": rig.simulator.pid,
                      "daemon": rig.daemon.pid}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""
GONE_WITHIN_S = 10.0


def _running(pid: int) -> bool:
    """Whether `pid` still runs: a zombie (dead, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the daemon did not come up"
        time.sleep(0.05)


def test_a_sigkilled_launcher_takes_its_children_with_it(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "run")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    children: dict[str, int] = {}
    try:
        assert launcher.stdout is not None
        children = json.loads(launcher.stdout.readline())
        daemon_log = tmp_path / "run" / "daemon.log"
        _wait_for(lambda: daemon_log.exists() and " up; commands on " in daemon_log.read_text())
        assert all(_running(pid) for pid in children.values()), children
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        killed = time.monotonic()
        while time.monotonic() - killed < GONE_WITHIN_S:
            running = {name for name, pid in children.items() if _running(pid)}
            if not running:
                break
            time.sleep(0.05)
        assert not running, f"still running {GONE_WITHIN_S:g} s after the launcher: {running}"
        # Each ran its own shutdown (SIGTERM), not a kill: the daemon took the rig down.
        assert " down; " in daemon_log.read_text()
    finally:
        launcher.kill()
        for pid in children.values():
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_started_does_not_start() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(subprocess.SubprocessError, match="preexec_fn"):
        subprocess.Popen([sys.executable, "-c", "pass"], preexec_fn=tied_to(dead.pid))
