"""A USB device through pyusb: blocking calls in a worker thread, a vanished device as a lost link.

pyusb's calls block (a control transfer up to its timeout, an interrupt read until a report or
its timeout), so every one runs in a worker thread (the loop's default executor): the event loop
never waits on USB. A transfer whose caller is cancelled finishes in its thread, and `close`
waits for it before releasing the interface.
The backend is a parameter: None is pyusb's default (libusb 1.0 on the rig), the simulator
passes its own backend object (`drivers/sim/usb/backend.py`), and the code above does not know
which it has.

Errors, from libusb's codes: ENODEV (the device was unplugged) closes the link and raises
`UsbLinkClosedError`, a `LinkClosedError` like a pulled serial cable; ETIMEDOUT raises
`UsbTimeoutError` (counted in the link's statistics); anything else (a stalled request, EPIPE; an
I/O error) raises `UsbTransferError` and leaves the link open. A bus that cannot be reached (a
remote bus's socket, `usb_remote.py`) is a closed link too. A device found with more than one
match is refused rather than guessed: give its serial number.

Kernel drivers: with `detach_kernel_driver`, `open` detaches the driver bound to the interface
(usbhid holds a HID pedal) and claims it; `close` releases it and re-attaches the driver it
detached, so the desktop gets its keyboard back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import usb.core
import usb.util

from drivers.clock import REAL_CLOCK, Clock
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import LinkClosedError

log = logging.getLogger(__name__)

T = TypeVar("T")

DIRECTION_IN = 0x80


class UsbLinkClosedError(LinkClosedError):
    """The device is not open: never found, unplugged (ENODEV), or closed."""


class UsbTimeoutError(TimeoutError):
    """A transfer timed out (libusb's ETIMEDOUT)."""


class UsbTransferError(OSError):
    """The device refused or failed a transfer (a stall, an I/O error); the link stays open."""


@dataclass(frozen=True)
class UsbDeviceMatch:
    """Which device to open: vendor id, any of the product ids, and optionally its serial."""

    vendor_id: int
    product_ids: tuple[int, ...]
    serial_number: str | None = None

    def describe(self) -> str:
        products = "|".join(f"{pid:04x}" for pid in self.product_ids)
        serial = f" serial {self.serial_number}" if self.serial_number else ""
        return f"USB {self.vendor_id:04x}:{products}{serial}"


class UsbLink:
    """One USB device, opened by `match` on `backend`."""

    def __init__(
        self,
        match: UsbDeviceMatch,
        *,
        backend: object | None = None,
        interface: int = 0,
        detach_kernel_driver: bool = False,
        stats: LinkStats | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.match = match
        self.interface = interface
        self.stats = stats if stats is not None else LinkStats()
        self._backend = backend
        self._detach = detach_kernel_driver
        self._clock = clock
        self._device: Any = None
        self._stale: Any = None
        """A device lost while open: its handle is disposed of by `close`, in a thread."""
        self._detached = False
        self._closed = asyncio.Event()
        self._closed.set()
        self._ever_opened = False
        self._inflight: set[asyncio.Future[Any]] = set()
        self.product_id: int | None = None
        self.serial_number: str | None = None
        self.interrupt_in: tuple[int, int] | None = None
        """The claimed interface's interrupt IN endpoint: (address, max packet size), if any."""

    @property
    def is_open(self) -> bool:
        return self._device is not None

    async def open(self) -> None:
        if self.is_open:
            return
        stale, self._stale = self._stale, None
        if stale is not None:
            await asyncio.to_thread(self._release, stale)
        device = await asyncio.to_thread(self._find_and_claim)
        self._device = device
        self._closed = asyncio.Event()
        self.stats.connected = True
        if self._ever_opened:
            self.stats.reconnects += 1
        self._ever_opened = True
        log.info("opened %s (serial %s)", self.match.describe(), self.serial_number)

    def _find_and_claim(self) -> Any:
        match = self.match
        try:
            found = list(
                usb.core.find(
                    find_all=True,
                    backend=self._backend,
                    custom_match=lambda d: (
                        d.idVendor == match.vendor_id and d.idProduct in match.product_ids
                    ),
                )
            )
            if match.serial_number is not None:
                found = [d for d in found if _serial_of(d) == match.serial_number]
        except (usb.core.USBError, usb.core.NoBackendError, ValueError, ConnectionError) as exc:
            raise UsbLinkClosedError(f"cannot list {match.describe()}: {exc}") from exc
        if not found:
            raise UsbLinkClosedError(f"{match.describe()} is not attached")
        if len(found) > 1:
            serials = ", ".join(str(_serial_of(d)) for d in found)
            raise UsbLinkClosedError(
                f"{match.describe()}: {len(found)} devices match (serials {serials}); "
                "give the serial number"
            )
        device = found[0]
        try:
            self.serial_number = _serial_of(device)
            self.product_id = int(device.idProduct)
            self._detached = False
            if self._detach and _kernel_driver_active(device, self.interface):
                device.detach_kernel_driver(self.interface)
                self._detached = True
            usb.util.claim_interface(device, self.interface)
            self.interrupt_in = _interrupt_in_of(device, self.interface)
        except usb.core.USBError as exc:
            self._release(device)
            raise UsbLinkClosedError(f"cannot open {match.describe()}: {exc}") from exc
        return device

    async def control(
        self,
        request_type: int,
        request: int,
        value: int,
        index: int,
        data_or_length: int | bytes,
        timeout_ms: int,
    ) -> bytes:
        """One control transfer; the data read (IN) or b"" (OUT)."""
        device = self._require()
        started_s = self._clock.monotonic()

        def transfer() -> bytes:
            result = device.ctrl_transfer(
                request_type, request, value, index, data_or_length, timeout_ms
            )
            return bytes(result) if request_type & DIRECTION_IN else b""

        reply = await self._call(transfer)
        self.stats.record_rtt(self._clock.monotonic() - started_s)
        self.stats.frames_tx += 1
        if isinstance(data_or_length, bytes):
            self.stats.bytes_tx += len(data_or_length)
        if request_type & DIRECTION_IN:
            self.stats.frames_rx += 1
            self.stats.bytes_rx += len(reply)
        return reply

    def control_nowait(
        self,
        request_type: int,
        request: int,
        value: int,
        index: int,
        timeout_ms: int,
        on_failure: Callable[[BaseException], None],
    ) -> None:
        """Start an OUT control transfer now, without waiting (the fault path).

        The transfer runs in the loop's default executor, ahead of anything the caller awaits
        later; a failure goes to `on_failure` (in the event loop), never nowhere.
        """
        device = self._require()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            None,
            lambda: device.ctrl_transfer(request_type, request, value, index, b"", timeout_ms),
        )
        self.stats.frames_tx += 1

        def done(fut: asyncio.Future[Any]) -> None:
            exc = fut.exception()
            if exc is not None:
                if _is_gone(exc):
                    self._lost(exc)
                on_failure(exc)

        future.add_done_callback(done)

    async def read(self, endpoint: int, size: int, timeout_ms: int) -> bytes | None:
        """One interrupt (or bulk) IN transfer; None when nothing came within `timeout_ms`."""
        device = self._require()
        try:
            data = await self._call(lambda: bytes(device.read(endpoint, size, timeout_ms)))
        except UsbTimeoutError:
            return None  # an idle HID device sends nothing: not a fault
        self.stats.frames_rx += 1
        self.stats.bytes_rx += len(data)
        return data

    async def close(self) -> None:
        device = self._device if self._device is not None else self._stale
        self._device = self._stale = None
        if self._inflight:
            # a transfer whose caller was cancelled still runs in its thread: the interface is
            # released after it (it ends within its own timeout)
            await asyncio.wait(set(self._inflight))
        if device is not None:
            await asyncio.to_thread(self._release, device)
            self.stats.connected = False
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _release(self, device: Any) -> None:
        """Give the interface back (and its kernel driver); a device or bus already gone is
        nothing left to release."""
        with contextlib.suppress(usb.core.USBError, ConnectionError):
            usb.util.release_interface(device, self.interface)
        if self._detached:
            try:
                device.attach_kernel_driver(self.interface)
            except (usb.core.USBError, ConnectionError) as exc:
                if not _is_gone(exc) and not isinstance(exc, ConnectionError):
                    log.warning(
                        "re-attaching the kernel driver of %s: %s", self.match.describe(), exc
                    )
            self._detached = False
        with contextlib.suppress(usb.core.USBError, ConnectionError):
            usb.util.dispose_resources(device)

    def _require(self) -> Any:
        if self._device is None:
            raise UsbLinkClosedError(f"{self.match.describe()} is not open")
        return self._device

    async def _call(self, fn: Callable[[], T]) -> T:
        future = asyncio.get_running_loop().run_in_executor(None, fn)
        self._inflight.add(future)
        future.add_done_callback(self._transfer_done)
        try:
            # shielded: cancelling the caller must not orphan a transfer `close` has to wait for
            return await asyncio.shield(future)
        except usb.core.USBTimeoutError as exc:
            self.stats.timeouts += 1
            raise UsbTimeoutError(f"{self.match.describe()}: {exc}") from exc
        except usb.core.USBError as exc:
            if _is_gone(exc):
                self._lost(exc)
                raise UsbLinkClosedError(f"{self.match.describe()} is gone: {exc}") from exc
            raise UsbTransferError(exc.errno, f"{self.match.describe()}: {exc}") from exc
        except ConnectionError as exc:  # a remote bus (drivers/transport/usb_remote.py) went away
            self._lost(exc)
            raise UsbLinkClosedError(f"{self.match.describe()}: {exc}") from exc

    def _transfer_done(self, future: asyncio.Future[Any]) -> None:
        self._inflight.discard(future)
        if not future.cancelled():
            future.exception()  # a cancelled caller's failure: the next call meets it again

    def _lost(self, exc: BaseException) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        log.warning("lost %s: %s", self.match.describe(), exc)
        self._stale = device
        self.stats.connected = False
        self._closed.set()


def _is_gone(exc: BaseException) -> bool:
    return isinstance(exc, usb.core.USBError) and exc.errno == errno.ENODEV


def _kernel_driver_active(device: Any, interface: int) -> bool:
    try:
        return bool(device.is_kernel_driver_active(interface))
    except NotImplementedError:
        return False  # libusb cannot tell off Linux (macOS, Windows): nothing to detach


def _interrupt_in_of(device: Any, interface: int) -> tuple[int, int] | None:
    intf = device.get_active_configuration()[(interface, 0)]
    for endpoint in intf:
        address = int(endpoint.bEndpointAddress)
        is_in = usb.util.endpoint_direction(address) == usb.util.ENDPOINT_IN
        is_interrupt = usb.util.endpoint_type(endpoint.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
        if is_in and is_interrupt:
            return address, int(endpoint.wMaxPacketSize)
    return None


def _serial_of(device: Any) -> str | None:
    try:
        serial: str | None = device.serial_number
    except (usb.core.USBError, ValueError):
        return None
    return serial
