"""A fake of MicroPython's `machine`, `micropython` and `time.ticks_*`, so firmware/hal_rp2040.py
runs under CPython: pins record their levels, the SPI bus plays an ADS1220, the WDT counts feeds."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from drivers.sim import micropython_board
from firmware.ticks import TICKS_MAX


class Pin(micropython_board.Pin):
    """The emulated Pico's pin, which also records every pin made and takes an IRQ handler."""

    IRQ_RISING = 8
    pins: ClassVar[dict[int, Pin]] = {}

    def __init__(self, pin_id: int, mode: int = 0, pull: int | None = None, value: int = 0) -> None:
        super().__init__(pin_id, mode, pull, value)
        self.id = pin_id
        self.mode = mode
        self.handler: Callable[[Pin], None] | None = None
        Pin.pins[pin_id] = self

    def irq(self, trigger: int, handler: Callable[[Pin], None]) -> None:
        self.handler = handler

    def drive(self, level: int) -> None:
        """The outside world sets an input; a rising edge fires the interrupt handler."""
        rising = level and not self.level
        self.level = level
        if rising and self.handler is not None:
            self.handler(self)


class PWM:
    def __init__(self, pin: Pin) -> None:
        self.pin = pin
        self.duty = -1
        self.frequency = 0

    def freq(self, hz: int) -> None:
        self.frequency = hz

    def duty_u16(self, duty: int) -> None:
        self.duty = duty


class SPI:
    """An ADS1220: records the commands written, answers reads with `code` (24-bit)."""

    last: SPI | None = None

    def __init__(self, spi_id: int, **kwargs: Any) -> None:
        self.settings = kwargs
        self.written: list[bytes] = []
        self.code = 0
        SPI.last = self

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def readinto(self, buf: bytearray, write: int = 0) -> None:
        buf[:3] = (self.code & 0xFFFFFF).to_bytes(3, "big")


class WDT:
    last: WDT | None = None

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout
        self.feeds = 0
        WDT.last = self

    def feed(self) -> None:
        self.feeds += 1


class FakeClock:
    """time.ticks_us: each reading moves the clock on by `step_us` (the main loop's pass)."""

    us = 0
    step_us = 500

    @classmethod
    def ticks_us(cls) -> int:
        cls.us += cls.step_us
        return cls.us & TICKS_MAX


@contextmanager
def fake_micropython() -> Iterator[types.ModuleType]:
    """Install the fakes in sys.modules (and ticks_us/sleep_us in `time`) for the block."""
    machine = types.ModuleType("machine")
    machine.Pin = Pin  # type: ignore[attr-defined]
    machine.PWM = PWM  # type: ignore[attr-defined]
    machine.SPI = SPI  # type: ignore[attr-defined]
    machine.WDT = WDT  # type: ignore[attr-defined]
    machine.unique_id = lambda: bytes(range(1, 9))  # type: ignore[attr-defined]
    micropython = types.ModuleType("micropython")
    micropython.kbd_intr = lambda chr_code: None  # type: ignore[attr-defined]
    time_mod = sys.modules["time"]
    saved = {k: sys.modules.get(k) for k in ("machine", "micropython", "firmware.hal_rp2040")}
    sys.modules["machine"] = machine
    sys.modules["micropython"] = micropython
    sys.modules.pop("firmware.hal_rp2040", None)
    time_mod.ticks_us = FakeClock.ticks_us  # type: ignore[attr-defined]
    time_mod.sleep_us = lambda us: None  # type: ignore[attr-defined]
    Pin.pins = {}
    try:
        yield machine
    finally:
        del time_mod.ticks_us, time_mod.sleep_us
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
