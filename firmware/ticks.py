"""MicroPython's tick arithmetic, for any port: `ticks_us` wraps at 2^30 microseconds (17.9 min).

The board's clock is `ticks_us`, and every time on the board is a tick value: differences go
through `ticks_diff`, sums through `ticks_add`, never plain `-` and `+`. Tick values stay below
2^30, so on the RP2040 (31-bit small integers) they never allocate. The host unwraps the board's
timestamps (drivers/ioboard/codec.py). These are MicroPython's own definitions (time.ticks_diff,
time.ticks_add), written out so CPython and the simulator share them.
"""

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD // 2


def ticks_add(ticks: int, delta: int) -> int:
    return (ticks + delta) & TICKS_MAX


def ticks_diff(end: int, start: int) -> int:
    """`end - start` on the wrapping clock: correct while the two are less than 2^29 us apart."""
    return ((end - start + _TICKS_HALF) & TICKS_MAX) - _TICKS_HALF
