"""`rig firmware flash|version` against an emulated Pico: the real mpremote on a pty.

The emulator (drivers/sim/micropython_board.py) speaks MicroPython's raw REPL and raw-paste
mode and keeps the board's flash in a scratch directory; after mpremote's reset it runs the
firmware it finds there, imported from that directory, on the simulated board's HAL. So the
version the board reports after a flash comes from the files that were copied.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import firmware
from drivers.ioboard.driver import IoBoard
from firmware.board import FIRMWARE_VERSION
from rig.cli import firmware_flash
from rig.cli.board_port import BoardPortError
from rig.cli.main import main

FIRMWARE_DIR = Path(firmware.__file__).parent


class EmulatedPico:
    def __init__(self, flash: Path, *extra: str) -> None:
        self.flash = flash
        self.process = subprocess.Popen(
            [sys.executable, "-m", "drivers.sim.micropython_board", "--flash", str(flash), *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = self.process.stdout.readline().strip()
        assert self.port.startswith("/dev/"), self.port

    def stop(self) -> None:
        self.process.kill()  # the emulator's own pid (the firmware runs in it after the reset)
        self.process.wait(10)


@pytest.fixture
def pico(tmp_path: Path) -> Iterator[EmulatedPico]:
    board = EmulatedPico(tmp_path / "flash")
    yield board
    board.stop()


def rig(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["firmware", *args])
    return code, capsys.readouterr().out


def test_flash_copies_verifies_resets_and_the_board_reports_the_version(
    pico: EmulatedPico, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = rig(capsys, "version", "--port", pico.port)
    assert code == 1
    assert "no I/O board protocol answer" in out  # a bare MicroPython: nothing flashed yet

    code, out = rig(capsys, "flash", "--port", pico.port, "--json")
    assert code == 0, out
    report = json.loads(out)
    expected = ".".join(map(str, FIRMWARE_VERSION))
    assert report["firmware_version"] == expected
    assert report["matches_host"] is True
    assert report["serial_number"] == "PICO-EMU-0001"

    # the board's flash holds exactly the firmware's files and the boot file
    for source in FIRMWARE_DIR.glob("*.py"):
        if source.name not in firmware_flash.HOST_ONLY:
            assert (pico.flash / "firmware" / source.name).read_bytes() == source.read_bytes()
    assert (pico.flash / "main.py").read_bytes() == firmware_flash.BOOT_MAIN
    flashed = {f["path"]: f["sha256"] for f in report["files"]}
    assert flashed["/main.py"] == hashlib.sha256(firmware_flash.BOOT_MAIN).hexdigest()

    code, out = rig(capsys, "version", "--port", pico.port, "--json")
    assert code == 0, out
    assert json.loads(out)["firmware_version"] == expected

    # a board running the firmware ignores the REPL's Ctrl-C: refused, and said why
    code, out = rig(capsys, "flash", "--port", pico.port)
    assert code == 1
    assert "runs the rig firmware" in out and "Reflashing a board" in out

    # the host expects another version than the board reports: a clear error
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(firmware_flash, "FIRMWARE_VERSION", (9, 9, 9))
        with pytest.raises(BoardPortError, match=r"firmware 1\.\d+\.\d+; expected .* 9\.9\.9"):
            firmware_flash.wait_for_firmware(pico.port, 460800)


def test_the_version_comes_from_the_flashed_files(
    pico: EmulatedPico, capsys: pytest.CaptureFixture[str]
) -> None:
    """The emulator boots what is in its flash, not the repository's firmware: a flash whose
    board.py says another version makes the board report that one, and the check refuses it."""
    code, out = rig(capsys, "flash", "--port", pico.port)
    assert code == 0, out
    board_py = pico.flash / "firmware" / "board.py"
    text = board_py.read_text()
    old = f"FIRMWARE_VERSION = {FIRMWARE_VERSION}"
    assert old in text
    board_py.write_text(text.replace(old, "FIRMWARE_VERSION = (0, 0, 7)"))
    pico.stop()
    powered_up = EmulatedPico(pico.flash)  # a power cycle: the board boots its main.py
    try:
        with pytest.raises(BoardPortError, match=r"firmware 0\.0\.7"):
            firmware_flash.wait_for_firmware(powered_up.port, 460800)
    finally:
        powered_up.stop()


def test_a_copy_that_does_not_verify_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    board = EmulatedPico(tmp_path / "flash", "--corrupt-writes")
    try:
        code, out = rig(capsys, "flash", "--port", board.port)
    finally:
        board.stop()
    assert code == 1
    assert "verification failed" in out
    assert "/firmware/board.py (board " in out


def test_no_device_on_the_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyACM9")
    for action in ("flash", "version"):
        code, out = rig(capsys, action, "--port", missing)
        assert code == 1
        assert f"{missing}: no such device" in out


def test_a_device_that_is_not_a_micropython_board(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = os.openpty()  # a serial device that never answers
    try:
        code, out = rig(capsys, "flash", "--port", os.ttyname(slave))
    finally:
        os.close(master)
        os.close(slave)
    assert code == 1
    assert "no MicroPython raw REPL answered" in out


def test_no_port_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = rig(capsys, "version")
    assert code == 2
    assert "--port PATH, or --profile FILE" in out


async def test_a_port_the_rig_holds_is_refused_and_its_link_untouched(
    pico: EmulatedPico, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["firmware", "flash", "--port", pico.port]) == 0
    board = IoBoard(pico.port)  # the daemon's driver, holding the port as the daemon does
    await board.connect()
    try:
        capsys.readouterr()
        for action in ("version", "flash"):
            code = await asyncio.to_thread(main, ["firmware", action, "--port", pico.port])
            out = capsys.readouterr().out
            assert code == 1
            assert "in use by another program" in out and "stop the rig first" in out
        # nothing reached the daemon's link: no garbage, and the board still answers it
        assert board.stats.crc_errors == 0 and board.malformed_frames == 0
        assert (await board.identify()).firmware_version == FIRMWARE_VERSION
    finally:
        await board.close()
