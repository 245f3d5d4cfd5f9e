"""The emulated Pico after its reset: it runs the firmware in its flash, on the simulated HAL.

`drivers.sim.micropython_board` becomes this process (exec) when a reset finds `main.py` in the
flash. On the board, `main.py` runs `firmware.main.main()` on the RP2040's HAL; here the
`firmware` package is imported from the flash directory, so what answers on the port is the code
that was copied there (a file missing from the copy fails the import, as on the board), while the
hardware under it is the simulator's: `IoBoardDevice`'s HAL with the line at rest (0 mmHg, the
transducer's noise). It serves the board protocol on the pty it inherited until it is killed; like
the real firmware it never hands the port back to the REPL.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import sys
import time
from pathlib import Path

STEP_S = 0.002
"""One sample period: the loop wakes at least this often to advance the board."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flash", type=Path, required=True)
    parser.add_argument("--fd", type=int, required=True, help="the pty's master, inherited")
    args = parser.parse_args(argv)
    flash = args.flash.resolve()
    # The flash first on the path: `firmware` (and everything the HAL imports of it) is the copy.
    sys.path.insert(0, str(flash))
    import firmware

    if Path(firmware.__file__).resolve().parent != flash / "firmware":
        sys.exit(f"firmware imported from {firmware.__file__}, not from the flash {flash}")
    from drivers.sim.ioboard_device import IoBoardDevice

    device = IoBoardDevice(serial_number="PICO-EMU-0001")
    os.set_blocking(args.fd, False)
    device.advance(time.monotonic(), 0.0)
    while True:
        readable, _, _ = select.select([args.fd], [], [], STEP_S)
        out = b""
        if readable:
            with contextlib.suppress(BlockingIOError):
                out += device.receive(os.read(args.fd, 4096), time.monotonic())
        out += device.advance(time.monotonic(), 0.0)
        _write(args.fd, out)


def _write(fd: int, data: bytes) -> None:
    """USB CDC with no host reading drops what the board sends; so does this."""
    try:
        os.write(fd, data)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EIO):
            raise


if __name__ == "__main__":
    main()
