"""The HAL for MicroPython's unix port: the firmware on a PC, its host link a pseudo-terminal.

For the test that runs this firmware under MicroPython itself against the host's real board
driver (tests/firmware/test_micropython_unix.py): the firmware's own code, the interpreter the
board runs, the host's driver and codec, and nothing simulated but the hardware, which is a board
at rest:

- host link: the process's stdin and stdout (the test makes them a pty's master end);
- pressure: 0 mmHg (the line at rest, already zeroed), every sample;
- relay and LED: kept as state, nothing to drive; the e-stop is never pressed;
- no hardware watchdog (`machine.WDT`): the unix port has none;
- clock: `time.ticks_us` masked to 30 bits, since the unix port's 64-bit build does not wrap
  where the RP2040 does.

Not for the board: `rig firmware flash` leaves this file out.
"""

import sys
import time

from firmware.hal import Hal
from firmware.host_link import HostLink
from firmware.ticks import TICKS_MAX


class UnixHal(Hal):
    def __init__(self) -> None:
        self._link = HostLink(sys.stdin.buffer, sys.stdout.buffer)
        self.relay_closed = False
        self.light_permille = 0

    def ticks_us(self) -> int:
        return int(time.ticks_us()) & TICKS_MAX

    def read_pressure_cmmhg(self, instant: int) -> int:
        return 0

    def estop_input(self) -> bool:
        return False

    def take_estop_edge(self) -> bool:
        return False

    def set_relay(self, closed: bool) -> None:
        self.relay_closed = closed

    def set_light(self, permille: int) -> None:
        self.light_permille = permille

    def write(self, frame: memoryview) -> None:
        self._link.write(frame)

    def start_watchdog(self) -> None:
        """No machine.WDT on the unix port (the test's process is killed instead)."""

    def feed_watchdog(self) -> None:
        """No machine.WDT on the unix port."""

    def read_host(self) -> bytes:
        return self._link.read()


def main() -> None:
    from firmware.board import Board
    from firmware.main import run

    hal = UnixHal()
    run(hal, Board(hal, b"UNIX-0001"))
