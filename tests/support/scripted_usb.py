"""Scripted control transfers on the simulated USB bus (PyMeasure's `expected_protocol`, for USB).

A `ScriptedUsbDevice` expects an exact sequence of control transfers, each
``(bmRequestType, bRequest, wValue, wIndex, data-or-wLength)`` with the bytes it answers (IN) or
b"" (OUT). A transfer that differs from the next one expected stalls and is recorded;
`finished()` fails on any mismatch or on an exchange left unconsumed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from drivers.sim.usb.descriptors import (
    CLASS_VENDOR,
    ConfigurationDescriptor,
    DeviceDescriptor,
    InterfaceDescriptor,
)
from drivers.sim.usb.device import SimUsbDevice, UsbStallError

Setup = tuple[int, int, int, int, int | bytes]
"""bmRequestType, bRequest, wValue, wIndex, and wLength (IN) or the data (OUT)."""


class ScriptMismatchError(AssertionError):
    pass


class ScriptedUsbDevice(SimUsbDevice):
    def __init__(
        self, vendor_id: int, product_id: int, script: Sequence[tuple[Setup, bytes]]
    ) -> None:
        super().__init__(
            DeviceDescriptor(vendor_id, product_id),
            ConfigurationDescriptor((InterfaceDescriptor(0, CLASS_VENDOR),)),
            {1: "Scripted", 2: "Scripted device", 3: "SCRIPT1"},
        )
        self._script = deque(script)
        self.mismatches: list[str] = []

    def vendor_or_class_in(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        return self._expect((request_type, request, value, index, length))

    def vendor_or_class_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        self._expect((request_type, request, value, index, data))

    def _expect(self, got: Setup) -> bytes:
        if not self._script:
            self.mismatches.append(f"unexpected transfer {_show(got)} after the script")
            raise UsbStallError("script consumed")
        expected, reply = self._script.popleft()
        if got != expected:
            self.mismatches.append(f"expected {_show(expected)}, got {_show(got)}")
            raise UsbStallError("script mismatch")
        return reply

    def finished(self) -> None:
        if self.mismatches:
            raise ScriptMismatchError("; ".join(self.mismatches))
        if self._script:
            raise ScriptMismatchError(
                f"{len(self._script)} exchanges never happened, the first {_show(self._script[0][0])}"
            )


def _show(setup: Setup) -> str:
    *head, last = setup
    tail = f"wLength {last}" if isinstance(last, int) else f"data {last.hex(' ') or '-'}"
    return "(" + ", ".join(f"{v:#06x}" for v in head) + f", {tail})"
