"""`rig firmware flash`: the I/O board's firmware onto its Pico with mpremote, checked twice.

1. The port is the board's and free: it exists, nothing holds it (the exclusive lock every rig
   tool and the daemon take), and MicroPython's raw REPL answers there (Ctrl-C, Ctrl-A).
2. mpremote (MicroPython's own tool, a dependency) copies `firmware/*.py` to `/firmware/` on the
   board and the boot file `/main.py`.
3. Verify: mpremote hashes every file on the board (`fs sha256sum`, hashlib on the board) and
   each must equal the SHA-256 of the file sent.
4. Reset the board (`mpremote reset`); it boots into the firmware; IDENTIFY, through the daemon's
   board driver, must answer this host's protocol version and `firmware.board.FIRMWARE_VERSION`,
   the one definition of the firmware's version that the board reports and the host expects.

mpremote runs as a subprocess (`python -m mpremote`, its command line, not its internal API,
which its authors say will change), each step under a timeout: on a pseudo-terminal mpremote
waits forever for a board that stops answering.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import serial

import firmware
from drivers.ioboard.codec import BoardIdent
from firmware.board import FIRMWARE_VERSION
from firmware.protocol import PROTOCOL_VERSION
from rig.cli.board_port import (
    BoardPortError,
    busy_message,
    check_present,
    format_version,
    identify,
)

BOOT_MAIN = b"from firmware.main import main\nmain()\n"
"""The board's `/main.py`: MicroPython runs it after every reset (docs/firmware.md)."""
HOST_ONLY = frozenset({"hal_unix.py"})
"""Firmware files the board does not need: the HAL for MicroPython's unix port."""
REPL_PROBE_S = 2.0
RAW_REPL_BANNER = b"raw REPL; CTRL-B to exit\r\n"
MKDIR_FIRMWARE = "import os\ntry:\n os.mkdir('/firmware')\nexcept OSError:\n pass\n"
COPY_TIMEOUT_S = 180.0
"""mpremote writes 256 bytes per raw-REPL exchange: about 40 kB of firmware, well under this."""
STEP_TIMEOUT_S = 30.0
BOOT_TIMEOUT_S = 10.0
"""From the reset to IDENTIFY answered: the Pico re-enumerates its USB port in about 2 s."""
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FlashedFile:
    local: Path
    remote: str
    sha256: str


def flashed_file(local: Path, remote: str) -> FlashedFile:
    return FlashedFile(local, remote, hashlib.sha256(local.read_bytes()).hexdigest())


def package_files() -> list[FlashedFile]:
    """The firmware package as it goes onto the board, under `/firmware/`."""
    package = Path(firmware.__file__).parent
    return [
        flashed_file(path, f"/firmware/{path.name}")
        for path in sorted(package.glob("*.py"))
        if path.name not in HOST_ONLY
    ]


def board_files(boot_main: Path) -> list[FlashedFile]:
    """What goes onto the board: the firmware package and the boot file. Nothing else on the
    flash is touched: the transducer's calibration (`/calibration.py`) stays."""
    return [*package_files(), flashed_file(boot_main, "/main.py")]


def probe_repl(port: str, baudrate: int) -> None:
    """Raise BoardPortError unless MicroPython's raw REPL answers on `port` (left in the friendly
    REPL afterwards)."""
    check_present(port)
    try:
        link = serial.Serial(port, 115200, timeout=0.05, exclusive=True)
    except serial.SerialException as exc:
        if "exclusively lock" in str(exc):
            raise BoardPortError(busy_message(port)) from None
        raise BoardPortError(f"{port}: cannot open: {exc}") from None
    with link:
        link.write(b"\r\x03\r\x01")  # interrupt whatever runs, enter the raw REPL
        seen = b""
        deadline = time.monotonic() + REPL_PROBE_S
        while RAW_REPL_BANNER not in seen and time.monotonic() < deadline:
            seen += link.read(256)
        if RAW_REPL_BANNER in seen:
            link.write(b"\r\x02")  # back to the friendly REPL, where mpremote expects it
            return
    try:
        ident = identify(port, baudrate, timeout_s=1.0)
    except BoardPortError:
        raise BoardPortError(
            f"{port}: no MicroPython raw REPL answered within {REPL_PROBE_S:g} s: not a "
            "MicroPython board (a new Pico needs MicroPython first: docs/firmware.md, "
            "bring-up), or a program on it ignores Ctrl-C"
        ) from None
    raise BoardPortError(
        f"{port}: the board runs the rig firmware {format_version(ident.firmware_version)}, which "
        "does not give its port back to the REPL (Ctrl-C is data to it): see docs/firmware.md, "
        "'Reflashing a board that runs the firmware'"
    )


def mpremote(port: str, args: list[str], timeout_s: float) -> str:
    command = [sys.executable, "-m", "mpremote", "connect", port, *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BoardPortError(
            f"{port}: mpremote {' '.join(args[:2])} did not finish within {timeout_s:g} s "
            "(the board stopped answering)"
        ) from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise BoardPortError(f"{port}: mpremote {' '.join(args[:2])} failed: {detail}")
    return done.stdout


def copy(port: str, files: list[FlashedFile]) -> None:
    """The package's files to `/firmware/`, and the boot file if `files` has it."""
    package = [f for f in files if f.remote.startswith("/firmware/")]
    args = ["exec", MKDIR_FIRMWARE, "+", "fs", "cp", *(str(f.local) for f in package)]
    args.append(":firmware/")
    for boot in (f for f in files if f.remote == "/main.py"):
        args += ["+", "fs", "cp", str(boot.local), ":main.py"]
    mpremote(port, args, COPY_TIMEOUT_S)


def verify(port: str, files: list[FlashedFile]) -> None:
    """Every file's SHA-256 computed on the board must equal the one sent."""
    out = mpremote(port, ["fs", "sha256sum", *(":" + f.remote for f in files)], STEP_TIMEOUT_S)
    digests = [line.strip() for line in out.splitlines() if _DIGEST.match(line.strip())]
    if len(digests) != len(files):
        raise BoardPortError(f"{port}: verification: expected {len(files)} hashes, got {out!r}")
    wrong = [
        f"{f.remote} (board {digest[:12]}..., sent {f.sha256[:12]}...)"
        for f, digest in zip(files, digests, strict=True)
        if digest != f.sha256
    ]
    if wrong:
        raise BoardPortError(
            f"{port}: verification failed, the board's copy differs from what was sent: "
            + ", ".join(wrong)
            + " (the old main.py may still boot; flash again, or replace the board's flash)"
        )


def wait_for_firmware(port: str, baudrate: int) -> BoardIdent:
    """IDENTIFY after the reset, retried while the board boots; versions checked."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while True:
        try:
            ident = identify(port, baudrate, timeout_s=1.0)
            break
        except BoardPortError as exc:
            if time.monotonic() >= deadline:
                raise BoardPortError(
                    f"{port}: the board did not answer IDENTIFY within {BOOT_TIMEOUT_S:g} s of "
                    f"its reset: {exc}"
                ) from None
            time.sleep(0.2)
    if ident.protocol_version != PROTOCOL_VERSION or ident.firmware_version != FIRMWARE_VERSION:
        raise BoardPortError(
            f"{port}: after flashing, the board reports protocol {ident.protocol_version} and "
            f"firmware {format_version(ident.firmware_version)}; expected protocol {PROTOCOL_VERSION} "
            f"and firmware {format_version(FIRMWARE_VERSION)}"
        )
    return ident


def flash(port: str, baudrate: int, progress: bool = True) -> tuple[BoardIdent, list[FlashedFile]]:
    def say(text: str) -> None:
        if progress:
            print(text, flush=True)

    probe_repl(port, baudrate)
    with tempfile.TemporaryDirectory(prefix="rig-firmware-") as tmp:
        boot_main = Path(tmp) / "main.py"
        boot_main.write_bytes(BOOT_MAIN)
        files = board_files(boot_main)
        say(f"copying {len(files)} files to {port} with mpremote")
        copy(port, files)
        say("verifying: SHA-256 of every file, computed on the board")
        verify(port, files)
    say("resetting the board")
    mpremote(port, ["reset"], STEP_TIMEOUT_S)
    ident = wait_for_firmware(port, baudrate)
    return ident, files
