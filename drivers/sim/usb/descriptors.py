"""USB descriptors of an emulated device: what pyusb reads through the backend, and their bytes.

Field names are the USB specification's (``bLength``, ``idVendor``, ...) because pyusb reads
them by those names from whatever the backend returns. The same objects serialise to the bytes a
real device answers to GET_DESCRIPTOR (USB 2.0, chapter 9.6), so a host that asks over endpoint 0
(pyusb does for string descriptors) sees exactly what the attribute path shows.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

DESC_DEVICE = 0x01
DESC_CONFIGURATION = 0x02
DESC_STRING = 0x03
DESC_INTERFACE = 0x04
DESC_ENDPOINT = 0x05
DESC_HID = 0x21
DESC_HID_REPORT = 0x22

ENDPOINT_IN = 0x80
TRANSFER_INTERRUPT = 0x03

CLASS_PER_INTERFACE = 0x00
CLASS_HID = 0x03
CLASS_VENDOR = 0xFF

LANGID_EN_US = 0x0409

SPEED_FULL = 2
"""libusb's LIBUSB_SPEED_FULL (12 Mbit/s), what both the Tic and the HID pedals run at."""


@dataclass(frozen=True)
class EndpointDescriptor:
    bEndpointAddress: int
    bmAttributes: int = TRANSFER_INTERRUPT
    wMaxPacketSize: int = 8
    bInterval: int = 10
    bLength: int = 7
    bDescriptorType: int = DESC_ENDPOINT
    bRefresh: int = 0
    bSynchAddress: int = 0
    extra_descriptors: bytes = b""

    def to_bytes(self) -> bytes:
        return (
            struct.pack(
                "<BBBBHB",
                self.bLength,
                self.bDescriptorType,
                self.bEndpointAddress,
                self.bmAttributes,
                self.wMaxPacketSize,
                self.bInterval,
            )
            + self.extra_descriptors
        )


@dataclass(frozen=True)
class InterfaceDescriptor:
    bInterfaceNumber: int
    bInterfaceClass: int
    bInterfaceSubClass: int = 0
    bInterfaceProtocol: int = 0
    endpoints: tuple[EndpointDescriptor, ...] = ()
    bAlternateSetting: int = 0
    iInterface: int = 0
    extra_descriptors: bytes = b""
    """Class-specific descriptors after this one (a HID interface's HID descriptor)."""
    bLength: int = 9
    bDescriptorType: int = DESC_INTERFACE

    @property
    def bNumEndpoints(self) -> int:
        return len(self.endpoints)

    def to_bytes(self) -> bytes:
        head = struct.pack(
            "<BBBBBBBBB",
            self.bLength,
            self.bDescriptorType,
            self.bInterfaceNumber,
            self.bAlternateSetting,
            self.bNumEndpoints,
            self.bInterfaceClass,
            self.bInterfaceSubClass,
            self.bInterfaceProtocol,
            self.iInterface,
        )
        return head + self.extra_descriptors + b"".join(ep.to_bytes() for ep in self.endpoints)


@dataclass(frozen=True)
class ConfigurationDescriptor:
    interfaces: tuple[InterfaceDescriptor, ...]
    bConfigurationValue: int = 1
    iConfiguration: int = 0
    bmAttributes: int = 0x80  # bus powered
    bMaxPower: int = 50  # in 2 mA units: 100 mA
    bLength: int = 9
    bDescriptorType: int = DESC_CONFIGURATION
    extra_descriptors: bytes = b""

    @property
    def bNumInterfaces(self) -> int:
        return len({intf.bInterfaceNumber for intf in self.interfaces})

    @property
    def wTotalLength(self) -> int:
        return len(self.to_bytes())

    def to_bytes(self) -> bytes:
        body = b"".join(intf.to_bytes() for intf in self.interfaces)
        head = struct.pack(
            "<BBHBBBBB",
            self.bLength,
            self.bDescriptorType,
            self.bLength + len(body),
            self.bNumInterfaces,
            self.bConfigurationValue,
            self.iConfiguration,
            self.bmAttributes,
            self.bMaxPower,
        )
        return head + body


@dataclass(frozen=True)
class DeviceDescriptor:
    idVendor: int
    idProduct: int
    bcdDevice: int = 0x0100
    iManufacturer: int = 1
    iProduct: int = 2
    iSerialNumber: int = 3
    bDeviceClass: int = CLASS_PER_INTERFACE
    bDeviceSubClass: int = 0
    bDeviceProtocol: int = 0
    bMaxPacketSize0: int = 64
    bcdUSB: int = 0x0200
    bNumConfigurations: int = 1
    bLength: int = 18
    bDescriptorType: int = DESC_DEVICE

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBHBBBBHHHBBBB",
            self.bLength,
            self.bDescriptorType,
            self.bcdUSB,
            self.bDeviceClass,
            self.bDeviceSubClass,
            self.bDeviceProtocol,
            self.bMaxPacketSize0,
            self.idVendor,
            self.idProduct,
            self.bcdDevice,
            self.iManufacturer,
            self.iProduct,
            self.iSerialNumber,
            self.bNumConfigurations,
        )


@dataclass(frozen=True)
class EnumeratedDeviceDescriptor:
    """The device descriptor as a backend hands it to pyusb: plus where the device sits."""

    descriptor: DeviceDescriptor
    bus: int
    address: int
    port_number: int
    port_numbers: tuple[int, ...] = field(default=())
    speed: int = SPEED_FULL

    def __getattr__(self, name: str) -> int:
        # pyusb copies bLength, idVendor, ... by name: they come from the device's descriptor
        return int(getattr(self.descriptor, name))


def string_descriptor(text: str) -> bytes:
    """A string descriptor: length, type 3, then UTF-16LE."""
    encoded = text.encode("utf-16-le")
    return bytes((2 + len(encoded), DESC_STRING)) + encoded


def langid_descriptor(langids: tuple[int, ...] = (LANGID_EN_US,)) -> bytes:
    """String descriptor zero: the language ids the device supports."""
    body = b"".join(struct.pack("<H", langid) for langid in langids)
    return bytes((2 + len(body), DESC_STRING)) + body


def hid_descriptor(report_descriptor_length: int) -> bytes:
    """The HID class descriptor (HID 1.11, 6.2.1): one report descriptor of the given length."""
    return struct.pack(
        "<BBHBBBH", 9, DESC_HID, 0x0111, 0, 1, DESC_HID_REPORT, report_descriptor_length
    )
