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


def build(host_in: object = None, host_out: object = None) -> tuple[Hal, Board]:
    """The board on the RP2040's HAL, with the transducer's calibration from /calibration.py:
    without a valid one the HAL reports the transducer at its rail (firmware/calibration.py says
    why). `host_in`, `host_out`: the host link (USB CDC by default; the tests give pipes)."""
    from firmware import calibration
    from firmware.hal_rp2040 import RpHal

    scale = calibration.load()
    if scale is None:
        hal = RpHal(host_in=host_in, host_out=host_out)
    else:
        hal = RpHal(scale[0], scale[1], host_in, host_out)
    return hal, Board(hal, hal.serial_number())


def main() -> None:
    hal, board = build()
    run(hal, board)
