"""The `rig` command line, run as a bench engineer runs it: a separate process per command."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import pty
import re
import signal
import sys
from pathlib import Path

import pytest

from rig.cli.client_cmds import EXIT_REFUSED
from rig.runtime import RunningRig
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


async def _spawn_rig(
    *args: str, runtime_dir: Path, stderr: int = asyncio.subprocess.PIPE
) -> asyncio.subprocess.Process:
    """`rig ARGS` as its own process, with its own runtime directory (where `rig sim` notes the
    running rig for the client commands)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rig.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=dict(os.environ, RIG_RUNTIME_DIR=str(runtime_dir)),
    )


async def _rig_cli(rig: RigUnderTest, *args: str) -> tuple[int, str, str]:
    process = await _spawn_rig(
        *args,
        "--broker",
        f"{rig.rig.broker_host}:{rig.rig.broker_port}",
        "--rig-id",
        rig.rig.profile.rig_id,
        "--credentials",
        str(rig.rig.credentials_file),
        runtime_dir=Path(rig.rig.run_dir) / "runtime",
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_prime_irrigate_watch_stop(rig: RigUnderTest) -> None:
    code, _, err = await _rig_cli(rig, "fluid", "irrigate", "--flow-ml-min", "1.0")
    assert code == 1 and "not primed" in err, "air in the line: irrigation needs a primed line"
    code, out, _ = await _rig_cli(rig, "fluid", "prime")
    assert code == 0 and "priming" in out
    await rig.wait_until(lambda s: s["primed"] and s["mode"] == "stopped", 5.0)
    code, out, _ = await _rig_cli(rig, "fluid", "irrigate", "--flow-ml-min", "1.0")
    assert code == 0 and "irrigating" in out
    await asyncio.sleep(1.0)
    csv_file = rig.rig.run_dir / "telemetry.csv"
    code, out, _ = await _rig_cli(
        rig, "watch", "--count", "3", "--hz", "10", "--csv", str(csv_file)
    )
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["mode", "P", "mmHg"]
    assert len(lines) == 4 and all(line.startswith("irrigating") for line in lines[1:])
    rows = list(csv.DictReader(csv_file.open()))
    assert len(rows) >= 3, "every telemetry row is logged, not only the three shown"
    assert {row["mode"] for row in rows} == {"irrigating"}
    assert all(float(row["flow_ml_min"]) > 0 for row in rows)
    code, out, _ = await _rig_cli(rig, "fluid", "stop")
    assert code == 0
    code, out, _ = await _rig_cli(rig, "status")
    assert code == 0 and "stopped" in out and "last stop operator" in out
    # how the fluid loop is scheduled, and how late it woke: what a bench engineer checks first
    # when a supervisor fires on a loaded machine
    assert re.search(r"loop +(SCHED_FIFO 10|ordinary).*, wakes late p99 [\d.]+ ms", out), out


async def test_cli_out_of_range_flow_is_refused_with_exit_code_1(rig: RigUnderTest) -> None:
    code, _, err = await _rig_cli(rig, "fluid", "irrigate", "--flow-ml-min", "50")
    assert code == 1 and "flow_ml_min = 50" in err
    assert not (await rig.sim("state"))["pump"]["running"]


async def test_cli_status_shows_a_killed_daemon_offline_by_its_last_will(rig: RigUnderTest) -> None:
    rig.kill_daemon()
    await asyncio.sleep(0.3)
    code, out, _ = await _rig_cli(rig, "status", "--timeout", "2")
    assert code == 3 and "OFFLINE" in out
    code, _, err = await _rig_cli(rig, "fluid", "stop", "--timeout", "0.5")
    assert code == 3 and "daemon" in err


async def test_rig_sim_says_when_the_rig_is_ready_serves_the_cli_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """The README's first command, as a user runs it: `rig sim` in one terminal, `rig status` in
    another, found through the runtime directory, then Ctrl-C."""
    runtime_dir = tmp_path / "runtime"
    sim = await _spawn_rig("sim", runtime_dir=runtime_dir, stderr=asyncio.subprocess.STDOUT)
    assert sim.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any(line.split()[1:3] == ["rig", "ready"] for line in lines[-1:]):
                line = (await sim.stdout.readline()).decode()
                assert line, "rig sim exited:\n" + "".join(lines)
                lines.append(line)
        status = await _spawn_rig("status", runtime_dir=runtime_dir)
        out, _ = await status.communicate()
        assert status.returncode == 0 and "state    ready" in out.decode(), out.decode()
    finally:
        sim.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            rest, _ = await sim.communicate()
    assert sim.returncode == 0, "".join(lines) + rest.decode()
    states = [line.split()[2] for line in lines if line[2:3] == ":" and " rig " in line]
    assert states[-2:] == ["self_test", "ready"], lines


async def test_cli_simctl_puts_the_tip_against_the_wall_and_the_rig_stops(
    rig: RigUnderTest,
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    code, out, err = await _rig_cli(
        rig, "simctl", "scenario", "tip_against_wall", "delay_s=0", "factor=12"
    )
    assert code == 0, err
    assert out.strip() == "ok: scenario tip_against_wall", "plain, as the other commands print"
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", 3.0)
    assert stop["cause"] in {"resistance_limit", "resistance_rise"} and stop["latched"]
    code, out, _ = await _rig_cli(rig, "simctl", "state", "--json")
    assert code == 0 and json.loads(out)["result"]["pump"]["running"] is False
    code, out, _ = await _rig_cli(rig, "simctl", "state")
    lines = out.splitlines()
    assert code == 0 and "pump" in lines, out
    assert ["running", "false"] in [line.split() for line in lines[lines.index("pump") :]]
    code, _, err = await _rig_cli(rig, "simctl", "scenario", "no_such_thing")
    assert code == 1 and "no_such_thing" in err
    code, _, err = await _rig_cli(rig, "simctl", "unplug")
    assert code == 2 and "needs its device" in err


async def test_cli_a_role_the_broker_refuses_is_told_so_not_asked_if_the_rig_runs(
    rig: RigUnderTest,
) -> None:
    """The observer may not write a command topic: the broker's refusal (PUBACK 0x87) is what
    the user reads, not a timeout dressed up as "is the rig running?"."""
    code, _, err = await _rig_cli(rig, "fluid", "stop", "--role", "observer")
    assert code == EXIT_REFUSED, err
    assert "Not authorized" in err and "observer" in err
    assert "is the rig running" not in err and "Traceback" not in err


async def test_cli_a_login_the_broker_refuses_is_told_so(rig: RigUnderTest, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"engineer": "not-the-password"}))
    process = await _spawn_rig(
        "status",
        "--broker",
        f"{rig.rig.broker_host}:{rig.rig.broker_port}",
        "--credentials",
        str(wrong),
        runtime_dir=tmp_path / "runtime",
    )
    _, err_bytes = await process.communicate()
    err = err_bytes.decode()
    assert process.returncode == EXIT_REFUSED, err
    assert "refused the login as engineer" in err and "Traceback" not in err


async def test_cli_watch_on_a_terminal_is_a_dashboard(rig: RigUnderTest) -> None:
    """stdout on a real pseudo-terminal: the dashboard, not the plain lines."""
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    controller_fd, terminal_fd = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rig.cli.main",
        "watch",
        "--count",
        "3",
        "--broker",
        f"{rig.rig.broker_host}:{rig.rig.broker_port}",
        "--credentials",
        str(rig.rig.credentials_file),
        stdout=terminal_fd,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, RIG_RUNTIME_DIR=str(rig.rig.run_dir / "runtime"), COLUMNS="110"),
    )
    os.close(terminal_fd)
    output = b""
    try:
        while True:
            chunk = await asyncio.to_thread(_read_or_eof, controller_fd)
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller_fd)
    assert await process.wait() == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))  # styles
    assert "mode irrigating" in text and "pressure" in text and "mmHg" in text
    assert "reconnects" in text and "events" in text
    assert "P mmHg" not in text, "the plain header belongs to the non-terminal output"


def _read_or_eof(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's last writer has gone
        return b""


async def test_cli_estop_latches_and_fault_reset_clears_it(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    code, out, err = await _rig_cli(rig, "estop")
    assert code == 0 and "e-stop: state estop" in out, err
    assert not (await rig.sim("state"))["pump"]["running"]
    assert (await rig.status())["state"] == "estop"
    code, out, _ = await _rig_cli(rig, "fault", "reset")
    assert code == 0 and "cleared" in out
    await rig.wait_ready(10.0)


async def test_cli_selftest_runs_and_prints_each_check(rig: RigUnderTest) -> None:
    code, out, err = await _rig_cli(rig, "selftest")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "self-test passed"
    assert any(line.split()[:2] == ["ok", "board_watchdog"] for line in lines[1:])


async def test_cli_devices_lists_the_running_simulators_ptys(
    rig: RigUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime_dir = rig.rig.run_dir / "runtime"
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(runtime_dir))
    # The note `rig sim` leaves; this test process stands in for its launcher.
    RunningRig(
        rig.rig.profile.rig_id,
        rig.rig.broker_host,
        rig.rig.broker_port,
        str(rig.rig.run_dir),
        os.getpid(),
    ).save()
    process = await _spawn_rig("devices", "--json", runtime_dir=runtime_dir)
    out, _ = await process.communicate()
    assert process.returncode == 0
    simulated = json.loads(out)["simulator"]
    assert simulated["rig_id"] == rig.rig.profile.rig_id
    for name in ("pump", "board"):
        device = simulated["devices"][name]
        assert device["link"] == str(rig.rig.link_dir / name)
        assert device["port"].startswith("/dev/pts/"), device
    process = await _spawn_rig("devices", runtime_dir=runtime_dir)
    out, _ = await process.communicate()
    text = out.decode()
    assert f"Simulator (rig {rig.rig.profile.rig_id}, `rig sim` running):" in text
    assert f"  pump   {simulated['devices']['pump']['port']}" in text


async def test_cli_basket_opens_closes_on_the_lesion_and_status_shows_it_captured(
    rig: RigUnderTest,
) -> None:
    await rig.wait_until(lambda s: (s.get("basket") or {}).get("state") == "retracted", 10.0)
    code, out, err = await _rig_cli(rig, "basket", "close")
    assert code == 1 and "refused (state_conflict)" in err and "retracted" in err
    code, out, err = await _rig_cli(rig, "basket", "open")
    assert code == 0 and out.startswith("basket: opening"), err
    await rig.wait_until(lambda s: s["basket"]["state"] == "open", 10.0)
    code, out, err = await _rig_cli(rig, "basket", "close")
    assert code == 0 and out.startswith("basket: closing"), err
    await rig.wait_until(lambda s: s["basket"]["state"] == "captured", 10.0)
    assert (await rig.sim("state"))["basket"]["stalled"]
    code, out, _ = await _rig_cli(rig, "status")
    assert code == 0 and "basket: captured" in out and "(holds the lesion)" in out
