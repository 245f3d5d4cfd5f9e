"""The board's main loop: host bytes in, sample instants on time, the hardware watchdog fed.

On the board, `/main.py` is `from firmware.main import main; main()` (docs/firmware.md).
"""

from firmware.board import Board
from firmware.hal import Hal


def run(hal: Hal, board: Board, iterations: int = -1) -> None:
    """Loop forever (or `iterations` times, for the tests). A busy loop: the sample instants are
    2 ms apart and a pass takes tens of microseconds, so polling costs nothing that matters."""
    hal.start_watchdog()
    while iterations:
        data = hal.read_host()
        if data:
            board.receive(data)
        board.poll(hal.ticks_us())
        hal.feed_watchdog()
        if iterations > 0:
            iterations -= 1


def main() -> None:
    from firmware.hal_rp2040 import RpHal

    hal = RpHal()
    run(hal, Board(hal, hal.serial_number()))
