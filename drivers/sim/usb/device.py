"""The base of an emulated USB device: descriptors, endpoint 0's standard requests, report queues.

A device model subclasses `SimUsbDevice` and answers its vendor or class requests
(`control_in`, `control_out`); HID devices queue their reports with `queue_report`. The backend
(`drivers/sim/usb/backend.py`) calls these from pyusb's threads (drivers run pyusb in
`asyncio.to_thread`), so every entry point holds the device's lock.

Power follows the cable: `plug` powers the device up (a model resets its state in
`on_power_up`), `unplug` powers it down, drops queued reports and wakes a blocked read, which then
fails like a read on a vanished device.
"""

from __future__ import annotations

import threading
from collections import deque

from drivers.sim.usb.descriptors import (
    DESC_CONFIGURATION,
    DESC_DEVICE,
    DESC_STRING,
    ConfigurationDescriptor,
    DeviceDescriptor,
    langid_descriptor,
    string_descriptor,
)

REQUEST_GET_STATUS = 0x00
REQUEST_GET_DESCRIPTOR = 0x06
REQUEST_GET_CONFIGURATION = 0x08

TYPE_MASK = 0x60
TYPE_STANDARD = 0x00
DIRECTION_IN = 0x80


class UsbStallError(Exception):
    """The device stalls the request (libusb reports LIBUSB_ERROR_PIPE): not supported or refused."""


class DevicePoweredOffError(Exception):
    """The device lost power (unplugged) while a transfer waited on it."""


class SimUsbDevice:
    """An emulated device behind the simulated backend."""

    def __init__(
        self,
        descriptor: DeviceDescriptor,
        configuration: ConfigurationDescriptor,
        strings: dict[int, str],
        *,
        kernel_driver_interfaces: frozenset[int] = frozenset(),
    ) -> None:
        self.descriptor = descriptor
        self.configuration = configuration
        self.strings = dict(strings)
        self.kernel_driver_interfaces = kernel_driver_interfaces
        """Interfaces a kernel driver binds to when the device is plugged in (usbhid binds HID)."""
        self.lock = threading.RLock()
        self._reports_ready = threading.Condition(self.lock)
        self._reports: dict[int, deque[bytes]] = {}
        self.powered = False

    # --- power, driven by the backend ----------------------------------------------------------

    def plug(self) -> None:
        with self.lock:
            self._reports.clear()
            self.powered = True
            self.on_power_up()

    def unplug(self) -> None:
        with self.lock:
            self.powered = False
            self._reports.clear()
            self.on_power_down()
            self._reports_ready.notify_all()

    def on_power_up(self) -> None:
        """A model resets itself here (a cold boot: plugging in powers a USB device up)."""

    def on_power_down(self) -> None:
        """A model notes the loss of power here (a motor stops being driven)."""

    # --- endpoint 0 -------------------------------------------------------------------------

    def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        """Answer an IN control request; at most `length` bytes reach the host."""
        with self.lock:
            if request_type & TYPE_MASK == TYPE_STANDARD:
                return self._standard_in(request, value, index)
            return self.vendor_or_class_in(request_type, request, value, index, length)

    def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        with self.lock:
            if request_type & TYPE_MASK == TYPE_STANDARD:
                raise UsbStallError(f"standard OUT request {request:#04x} not emulated")
            self.vendor_or_class_out(request_type, request, value, index, data)

    def vendor_or_class_in(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        raise UsbStallError(
            f"IN request type {request_type:#04x} request {request:#04x} not supported"
        )

    def vendor_or_class_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        raise UsbStallError(
            f"OUT request type {request_type:#04x} request {request:#04x} not supported"
        )

    def _standard_in(self, request: int, value: int, index: int) -> bytes:
        if request == REQUEST_GET_STATUS:
            return b"\x00\x00"
        if request == REQUEST_GET_CONFIGURATION:
            return bytes((self.configuration.bConfigurationValue,))
        if request == REQUEST_GET_DESCRIPTOR:
            kind, number = value >> 8, value & 0xFF
            if kind == DESC_DEVICE:
                return self.descriptor.to_bytes()
            if kind == DESC_CONFIGURATION and number == 0:
                return self.configuration.to_bytes()
            if kind == DESC_STRING:
                if number == 0:
                    return langid_descriptor()
                if number in self.strings:
                    return string_descriptor(self.strings[number])
            return self.class_descriptor(value, index)
        raise UsbStallError(f"standard IN request {request:#04x} not emulated")

    def class_descriptor(self, value: int, index: int) -> bytes:
        """A class descriptor asked for with GET_DESCRIPTOR (a HID report descriptor)."""
        raise UsbStallError(f"no descriptor {value:#06x} (index {index})")

    # --- interrupt IN endpoints -------------------------------------------------------------

    def queue_report(self, endpoint: int, report: bytes) -> None:
        """The device has a report for the host on `endpoint` (dropped while unpowered)."""
        with self.lock:
            if not self.powered:
                return
            self._reports.setdefault(endpoint, deque()).append(bytes(report))
            self._reports_ready.notify_all()

    def interrupt_in(self, endpoint: int, timeout_s: float | None) -> bytes | None:
        """The next report on `endpoint`, waiting up to `timeout_s` (None: for ever); None when none came.

        Raises `DevicePoweredOffError` if the device loses power before or during the wait.
        """
        with self.lock:
            if not self._reports_ready.wait_for(
                lambda: not self.powered or bool(self._reports.get(endpoint)),
                timeout=timeout_s,
            ):
                return None
            if not self.powered:
                raise DevicePoweredOffError
            return self._reports[endpoint].popleft()
