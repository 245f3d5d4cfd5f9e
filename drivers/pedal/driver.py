"""Async driver for a USB HID foot pedal: reports through pyusb, pedal events out.

`connect` finds the pedal (VEC IN-USB-2 or a PCsensor-style keyboard pedal, optionally by serial
number), detaches the kernel's HID driver from its interface and claims it; `close` releases it
and gives the interface back to the kernel. `run` reads the interrupt IN endpoint in a worker
thread (pyusb blocks) and turns reports into events through `PedalTracker` (debounce, quick
taps, stuck pedals), calling `on_event` for each in the event loop. A read that times out is
not a fault (an idle HID device says nothing); it is when the tracker's deadlines are checked.

When the pedal goes away (ENODEV), `run` releases every pressed pedal (cause UNPLUGGED), reports
`PedalUnplugged` and raises `LinkClosedError`: a lost pedal counts as released, and the owner
reconnects. A report the codec cannot read is counted (`stats.invalid_bytes`), logged and
skipped: it changes nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from drivers.clock import REAL_CLOCK, Clock
from drivers.pedal.reports import (
    PCSENSOR_IDS,
    VEC_PRODUCT_ID,
    VEC_VENDOR_ID,
    Pedal,
    PedalFormat,
    PedalReportError,
    decode_report,
)
from drivers.pedal.tracker import PedalEvent, PedalTiming, PedalTracker
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb import UsbDeviceMatch, UsbLink, UsbLinkClosedError

log = logging.getLogger(__name__)

DEFAULT_READ_TIMEOUT_MS = 50


def default_match(pedal_format: PedalFormat, serial_number: str | None = None) -> UsbDeviceMatch:
    """The ids a pedal of this format has out of the box (PCsensor: the first vendor's)."""
    if pedal_format is PedalFormat.VEC:
        return UsbDeviceMatch(VEC_VENDOR_ID, (VEC_PRODUCT_ID,), serial_number)
    vendor_id = PCSENSOR_IDS[0][0]
    products = tuple(pid for vid, pid in PCSENSOR_IDS if vid == vendor_id)
    return UsbDeviceMatch(vendor_id, products, serial_number)


class FootPedal:
    def __init__(
        self,
        pedal_format: PedalFormat,
        *,
        match: UsbDeviceMatch | None = None,
        key_map: dict[int, Pedal] | None = None,
        timing: PedalTiming | None = None,
        backend: object | None = None,
        interface: int = 0,
        read_timeout_ms: int = DEFAULT_READ_TIMEOUT_MS,
        stats: LinkStats | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.format = pedal_format
        self.key_map = key_map
        self.read_timeout_ms = read_timeout_ms
        self.tracker = PedalTracker(timing)
        self._clock = clock
        self.link = UsbLink(
            match if match is not None else default_match(pedal_format),
            backend=backend,
            interface=interface,
            detach_kernel_driver=True,
            stats=stats,
            clock=clock,
        )
        self.stats = self.link.stats
        self.reports = 0
        self._warned_keys: set[int] = set()

    @property
    def url(self) -> str:
        return self.link.match.describe()

    @property
    def pressed(self) -> frozenset[Pedal]:
        return self.tracker.pressed

    async def connect(self) -> None:
        await self.link.open()
        if self.link.interrupt_in is None:
            await self.link.close()
            raise UsbLinkClosedError(
                f"{self.link.match.describe()}: interface {self.link.interface} has no "
                "interrupt IN endpoint (not a pedal?)"
            )
        self.tracker = PedalTracker(self.tracker.timing)

    async def close(self) -> None:
        await self.link.close()

    async def wait_closed(self) -> None:
        await self.link.wait_closed()

    async def run(self, on_event: Callable[[PedalEvent], None]) -> None:
        """Read reports and emit events until the pedal is lost (then raise) or cancelled."""
        endpoint = self.link.interrupt_in
        if endpoint is None or not self.link.is_open:
            raise UsbLinkClosedError(f"{self.link.match.describe()} is not connected")
        address, packet_size = endpoint
        while True:
            try:
                report = await self.link.read(address, packet_size, self._read_timeout_ms())
            except LinkClosedError:
                for event in self.tracker.lost(self._clock.monotonic()):
                    on_event(event)
                raise
            now_s = self._clock.monotonic()
            if report is None:
                events = self.tracker.poll(now_s)
            else:
                self.reports += 1
                try:
                    reading = decode_report(self.format, report, self.key_map)
                except PedalReportError as exc:
                    self.stats.invalid_bytes += len(report)
                    log.warning("%s: %s", self.link.match.describe(), exc)
                    continue
                self._warn_unknown(reading.unknown_keys)
                events = self.tracker.feed(reading.pressed, now_s)
            for event in events:
                on_event(event)

    def _read_timeout_ms(self) -> int:
        """Up to the tracker's next deadline, so a debounce or a stuck limit is checked on time."""
        deadline = self.tracker.next_deadline()
        if deadline is None:
            return self.read_timeout_ms
        wait_ms = math.ceil((deadline - self._clock.monotonic()) * 1000.0)
        return max(1, min(self.read_timeout_ms, wait_ms))

    def _warn_unknown(self, keys: tuple[int, ...]) -> None:
        for key in keys:
            if key not in self._warned_keys:
                self._warned_keys.add(key)
                log.warning(
                    "%s sends key %#04x, which no pedal is mapped to (key_map)",
                    self.link.match.describe(),
                    key,
                )
