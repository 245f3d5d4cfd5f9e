"""The README's command sequence, run as a new user runs it: `rig sim` in one terminal, each
README command in another, exactly as written (found through the runtime note `rig sim` leaves).

A user waits where the README says to (the line filled, the bolus delivered, the rig stopped by
the wall); the test waits at the same points by reading `rig status --json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.rig_process import run_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

README = Path(__file__).resolve().parents[2] / "README.md"

SKIPPED = {
    ("safety", "report"): "runs the hazard tests itself: a test suite inside this one",
    ("bench", "stop-latency"): "a seven-minute benchmark, run by tests/system/test_bench.py",
    ("bench", "envelope"): "a one-minute benchmark; tests/fluid/test_envelope.py runs its grid",
    ("bench", "pedal"): "a two-minute benchmark, run by tests/system/test_bench.py",
    ("bench", "record-crash"): "a two-minute benchmark, run by tests/system/test_bench.py",
    ("bench", "telemetry"): "a 30-second benchmark with a browser, run by tests/console/",
}
"""README commands this test does not run, and why."""

Status = dict[str, Any]
WAITS: dict[tuple[str, ...], Callable[[Status], bool]] = {
    ("fluid", "prime"): lambda s: bool(s["primed"]) and s["mode"] == "stopped",
    ("fluid", "bolus"): lambda s: s["mode"] == "stopped",
    ("simctl", "scenario"): lambda s: s["fault"] is not None,
    ("fault", "reset"): lambda s: s["state"] == "ready",
    ("simctl", "pedal", "press"): lambda s: s["mode"] == "irrigating",
    ("simctl", "pedal", "release"): lambda s: s["mode"] == "stopped",
    ("estop",): lambda s: s["state"] == "estop",
    ("basket", "open"): lambda s: s["basket"]["state"] == "open",
    ("basket", "close"): lambda s: s["basket"]["state"] == "captured",
    ("basket", "retract"): lambda s: s["basket"]["state"] == "retracted",
    ("selftest",): lambda s: s["state"] == "ready",
}
"""After a command, what a user waits for before the next one (its state, read by `rig status`)."""


def readme_commands() -> list[list[str]]:
    """The `./run rig ...` lines of the README's first section (the sequence to try once the rig
    runs), each as `rig`'s argv."""
    section = README.read_text().split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for line in section.splitlines():
        if line.startswith("./run rig "):
            commands.append(shlex.split(line.split("#", 1)[0])[2:])
    return commands


async def _wait_for(predicate: Callable[[Status], bool], env: dict[str, str]) -> None:
    last = "no answer yet"
    try:
        async with asyncio.timeout(30):
            while True:
                code, out, err = await run_rig("status", "--json", env=env)
                last = f"exit {code}: {out}{err}"
                if code == 0 and predicate(json.loads(out)):
                    return
                await asyncio.sleep(0.3)
    except TimeoutError:
        raise AssertionError(f"the awaited state never came; last `rig status`: {last}") from None


def test_the_readme_lists_the_commands_this_test_runs() -> None:
    commands = readme_commands()
    assert len(commands) >= 10
    assert ["fluid", "stop"] in commands and ["estop"] in commands and ["selftest"] in commands
    assert all(command[0] != "sim" for command in commands)


async def test_the_readme_command_sequence_runs_against_the_simulated_rig(tmp_path: Path) -> None:
    env = dict(os.environ, RIG_RUNTIME_DIR=str(tmp_path / "runtime"), COLUMNS="100")
    sim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rig.cli.main",
        "sim",  # `./run sim` adds --camera: left out here to spare CI's two cores (a capture
        # process and a renderer beside the other workers' rigs: a 167 ms stall of this daemon's
        # loop in CI); test_cli_sim_camera checks what --camera starts
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert sim.stdout is not None
    transcript: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not transcript or transcript[-1].split()[1:3] != ["rig", "ready"]:
                line = (await sim.stdout.readline()).decode()
                assert line, "rig sim exited:\n" + "".join(transcript)
                transcript.append(line)
        for argv in readme_commands():
            if tuple(argv[:2]) in SKIPPED:
                continue
            if argv[0] == "watch":
                argv = [*argv, "--count", "3"]  # where a user presses Ctrl-C
            code, out, err = await run_rig(*argv, env=env)
            transcript.append(f"$ rig {shlex.join(argv)} -> {code}\n{out}{err}")
            assert code == 0, "".join(transcript)
            for prefix, predicate in WAITS.items():
                if tuple(argv[: len(prefix)]) == prefix:
                    await _wait_for(predicate, env)
    finally:
        sim.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            await sim.communicate()
