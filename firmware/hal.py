"""The board's hardware interface: everything `Board` needs from the outside world.

Implementations: `hal_rp2040.RpHal` (the real board, the only module that touches `machine`),
`drivers/sim/ioboard_device.SimHal` (the simulator), `hal_unix.UnixHal` (the MicroPython unix
port on a pty, for the tests) and the tests' fakes. Methods are called from the main loop only,
never from an interrupt; those on the sample path must not allocate.
"""


class Hal:
    def ticks_us(self) -> int:
        """The board's clock: microseconds, wrapping at 2^30 (firmware.ticks)."""
        raise NotImplementedError

    def read_pressure_cmmhg(self, instant: int) -> int:
        """The transducer's uncorrected reading for the sample instant `instant` (ticks), in
        centi-mmHg, or a rail code (protocol.PRESSURE_RAIL_*) for an open or shorted bridge. The
        real ADC returns its latest conversion; a simulated one evaluates the line at `instant`.
        Sample path: no allocation."""
        raise NotImplementedError

    def estop_input(self) -> bool:
        """The e-stop input's level now: True while pressed (or its wire is broken)."""
        raise NotImplementedError

    def take_estop_edge(self) -> bool:
        """True once if the input's interrupt saw a press since the last call, so a press shorter
        than a sample period still trips."""
        raise NotImplementedError

    def set_relay(self, closed: bool) -> None:
        """Close (power the pump) or open the pump relay."""
        raise NotImplementedError

    def set_light(self, permille: int) -> None:
        raise NotImplementedError

    def write(self, frame: memoryview) -> None:
        """Send bytes to the host (USB CDC). Must not block on a host that does not read."""
        raise NotImplementedError

    def feed_watchdog(self) -> None:
        """Feed the hardware watchdog (machine.WDT), which resets a firmware that hangs."""
        raise NotImplementedError

    # the main loop's (firmware.main), not the Board's

    def start_watchdog(self) -> None:
        """Start the hardware watchdog: from then on, a loop that stops feeding it resets the
        board (which opens the relay). It cannot be stopped."""
        raise NotImplementedError

    def read_host(self) -> bytes:
        """What the host sent since the last call (b"" if nothing), without blocking."""
        raise NotImplementedError
