"""The firmware under MicroPython itself. The sample path allocates nothing: the unix port runs
`mpy_heap_lock.py` with the heap locked, where any allocation raises MemoryError. And the whole
firmware runs on the unix port's HAL on a pty against the host's real board driver.

Runs when a `micropython` executable is on PATH; no package registry ships an official unix port
(docs/firmware.md says what was found and why none is a dependency), so otherwise it skips."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tty
from pathlib import Path

import pytest

from drivers.ioboard.codec import EventKind, PressureSample, SetFlow, Trip
from drivers.ioboard.driver import IoBoard
from firmware.board import FIRMWARE_VERSION

ROOT = Path(__file__).resolve().parents[2]
MICROPYTHON = shutil.which("micropython")
pytestmark = pytest.mark.skipif(
    MICROPYTHON is None,
    reason="no MicroPython unix port on PATH (not a dependency: docs/firmware.md says why and how to run these)",
)


def _run(script: str) -> subprocess.CompletedProcess[str]:
    assert MICROPYTHON is not None
    return subprocess.run(
        [MICROPYTHON, script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_the_sample_path_allocates_nothing_under_micropython() -> None:
    result = _run("tests/firmware/mpy_heap_lock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    # frames written: 2 command answers, 101 samples (the start instant and 100 more) and the
    # watchdog's EVENT; the watchdog trip is latched and the relay open
    assert result.stdout.split() == ["OK", "104", "101", "1", "False"]


def test_the_resistance_stop_allocates_nothing_under_micropython() -> None:
    result = _run("tests/firmware/mpy_heap_lock_resistance.py")
    assert result.returncode == 0, result.stdout + result.stderr
    # frames: 3 command answers, 101 samples and the RESISTANCE_TRIP report; the resistance trip
    # is latched and the relay open
    assert result.stdout.split() == ["OK", "105", "101", "8", "False"]


def test_the_heap_lock_catches_an_allocation(tmp_path: Path) -> None:
    script = tmp_path / "alloc.py"
    script.write_text("import micropython\nmicropython.heap_lock()\nx = [1, 2]\n")
    result = _run(str(script))
    assert result.returncode != 0 and "heap is locked" in result.stdout + result.stderr


async def test_the_firmware_under_micropython_answers_the_hosts_driver(tmp_path: Path) -> None:
    """The firmware's main loop under the unix port (firmware/hal_unix.py), its stdin and stdout
    a pty's master end, against the daemon's board driver on the pty: IDENTIFY, the sample
    stream, the relay under the heartbeat watchdog, SET_FLOW, and the watchdog trip."""
    assert MICROPYTHON is not None
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    firmware_process = await asyncio.create_subprocess_exec(
        MICROPYTHON, "tests/firmware/mpy_unix_board.py", cwd=ROOT, stdin=master, stdout=master
    )
    os.close(master)
    board = IoBoard(port)
    samples: list[PressureSample] = []
    board.on_sample = samples.append
    try:
        ident = await board.connect()
        assert ident.firmware_version == FIRMWARE_VERSION
        assert ident.serial_number == "UNIX-0001"
        await asyncio.sleep(0.5)
        # 500 Hz on the firmware's own clock (a loaded machine delays them, never drops them)
        assert len(samples) > 100 and board.samples_lost == 0
        assert {s.pressure_mmhg for s in samples} == {0.0}
        assert samples[-1].board_time_s - samples[0].board_time_s == pytest.approx(
            (len(samples) - 1) * 0.002
        )
        await board.configure_watchdog(100)
        await board.heartbeat()
        await board.set_pump_relay(True)
        await board.set_flow(SetFlow(0.5, 60.0, 300, 1060, 2))
        assert (await board.status()).relay_closed
        await asyncio.sleep(0.3)  # no heartbeat: the board's watchdog opens the relay
        status = await board.status()
        assert not status.relay_closed and status.trips == Trip.WATCHDOG
        assert board.last_event is not None and board.last_event.kind is EventKind.WATCHDOG_TRIP
        assert board.stats.crc_errors == 0 and board.malformed_frames == 0
    finally:
        await board.close()
        firmware_process.kill()
        await firmware_process.wait()
        os.close(slave)
