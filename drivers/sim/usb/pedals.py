"""Emulated USB foot pedals on the simulated backend: the VEC IN-USB-2 and a PCsensor switch.

Both are HID devices whose interface the kernel's usbhid holds until the host detaches it. A
pedal sends a report on its interrupt IN endpoint each time its state changes (HID devices
with idle rate 0 send nothing while nothing changes), with the bytes of `drivers/pedal/reports`.

Faults for scenarios and tests: `bounce` (a contact that chatters before it settles), and on
the PCsensor `stick` (the known bad contact that keeps the key pressed whatever the foot does,
until `unstick`). Unplugging is the backend's (`SimUsbBackend.unplug`).

The report descriptors are plausible, not read from the real devices: the boot keyboard's is the
HID 1.11 appendix B.1 example; the VEC's declares 16 buttons in 2 bytes. The host driver does
not read them.
"""

from __future__ import annotations

from drivers.pedal.reports import (
    DEFAULT_KEY_MAP,
    PCSENSOR_IDS,
    VEC_PRODUCT_ID,
    VEC_VENDOR_ID,
    Pedal,
    encode_boot_keyboard,
    encode_vec,
)
from drivers.sim.usb.descriptors import (
    CLASS_HID,
    DESC_HID_REPORT,
    ConfigurationDescriptor,
    DeviceDescriptor,
    EndpointDescriptor,
    InterfaceDescriptor,
    hid_descriptor,
)
from drivers.sim.usb.device import SimUsbDevice, UsbStallError

ENDPOINT_IN_1 = 0x81
HID_SUBCLASS_BOOT = 1
HID_PROTOCOL_KEYBOARD = 1

BOOT_KEYBOARD_REPORT_DESCRIPTOR = bytes.fromhex(
    "05 01 09 06 a1 01 05 07 19 e0 29 e7 15 00 25 01 75 01 95 08 81 02 95 01 75 08 81 01"
    " 95 05 75 01 05 08 19 01 29 05 91 02 95 01 75 03 91 01 95 06 75 08 15 00 25 65 05 07"
    " 19 00 29 65 81 00 c0"
)
VEC_REPORT_DESCRIPTOR = bytes.fromhex(
    "05 0c 09 01 a1 01 05 09 19 01 29 10 15 00 25 01 75 01 95 10 81 02 c0"
)


class _SimPedal(SimUsbDevice):
    def __init__(
        self,
        descriptor: DeviceDescriptor,
        interface: InterfaceDescriptor,
        report_descriptor: bytes,
        strings: dict[int, str],
    ) -> None:
        super().__init__(
            descriptor,
            ConfigurationDescriptor((interface,)),
            strings,
            kernel_driver_interfaces=frozenset({0}),
        )
        self._report_descriptor = report_descriptor
        self.down: frozenset[Pedal] = frozenset()

    def press(self, pedal: Pedal) -> None:
        self.set_down(self.down | {pedal})

    def release(self, pedal: Pedal) -> None:
        self.set_down(self.down - {pedal})

    def set_down(self, down: frozenset[Pedal]) -> None:
        with self.lock:
            if down != self.down:
                self.down = down
                self.queue_report(ENDPOINT_IN_1, self.report())

    def bounce(self, pedal: Pedal, times: int) -> None:
        """The contact chatters: `times` quick down-up pairs, reported back to back."""
        with self.lock:
            base = self.down - {pedal}
            for _ in range(times):
                self.set_down(base | {pedal})
                self.set_down(base)

    def report(self) -> bytes:
        raise NotImplementedError

    def on_power_up(self) -> None:
        self.down = frozenset()

    def class_descriptor(self, value: int, index: int) -> bytes:
        if value >> 8 == DESC_HID_REPORT and index == 0:
            return self._report_descriptor
        raise UsbStallError(f"no descriptor {value:#06x}")


def _hid_interface(report_descriptor: bytes, subclass: int, protocol: int) -> InterfaceDescriptor:
    return InterfaceDescriptor(
        0,
        CLASS_HID,
        subclass,
        protocol,
        endpoints=(EndpointDescriptor(ENDPOINT_IN_1, wMaxPacketSize=8, bInterval=10),),
        extra_descriptors=hid_descriptor(len(report_descriptor)),
    )


class SimVecPedal(_SimPedal):
    """VEC Infinity IN-USB-2: 2-byte bitmask reports."""

    def __init__(self, serial_number: str = "") -> None:
        strings = {1: "VEC", 2: "VEC USB Footpedal"}
        if serial_number:
            strings[3] = serial_number
        super().__init__(
            DeviceDescriptor(
                VEC_VENDOR_ID, VEC_PRODUCT_ID, iSerialNumber=3 if serial_number else 0
            ),
            _hid_interface(VEC_REPORT_DESCRIPTOR, 0, 0),
            VEC_REPORT_DESCRIPTOR,
            strings,
        )

    def report(self) -> bytes:
        return encode_vec(self.down)


class SimPcsensorPedal(_SimPedal):
    """A PCsensor-style switch: a boot keyboard whose pedals send the keys of `key_map`."""

    def __init__(
        self,
        serial_number: str = "",
        key_map: dict[int, Pedal] | None = None,
        ids: tuple[int, int] = PCSENSOR_IDS[0],
    ) -> None:
        strings = {1: "PCsensor", 2: "FootSwitch"}
        if serial_number:
            strings[3] = serial_number
        super().__init__(
            DeviceDescriptor(ids[0], ids[1], iSerialNumber=3 if serial_number else 0),
            _hid_interface(
                BOOT_KEYBOARD_REPORT_DESCRIPTOR, HID_SUBCLASS_BOOT, HID_PROTOCOL_KEYBOARD
            ),
            BOOT_KEYBOARD_REPORT_DESCRIPTOR,
            strings,
        )
        self.keys = {pedal: key for key, pedal in (key_map or DEFAULT_KEY_MAP).items()}
        self.stuck: frozenset[Pedal] = frozenset()

    def stick(self, pedal: Pedal) -> None:
        """A bad contact: the pedal's key stays down whatever the foot does."""
        with self.lock:
            self.stuck = self.stuck | {pedal}
            self.queue_report(ENDPOINT_IN_1, self.report())

    def unstick(self, pedal: Pedal) -> None:
        with self.lock:
            self.stuck = self.stuck - {pedal}
            self.queue_report(ENDPOINT_IN_1, self.report())

    def report(self) -> bytes:
        down = self.down | self.stuck
        return encode_boot_keyboard(tuple(self.keys[p] for p in Pedal if p in down))
