"""A pyusb backend whose bus holds emulated devices: the simulator's USB cable.

`usb.core.find(idVendor=..., backend=SimUsbBackend(...))` finds the plugged-in emulators, and
pyusb's `Device` API (`ctrl_transfer`, `read`, kernel-driver detach and re-attach, interface
claiming) goes through this object into them, exactly as it goes through libusb into real
devices. The drivers therefore run the same code on the simulator and on the bench.

What it reproduces of libusb on Linux, because drivers depend on it:

- Errors are `usb.core.USBError` with libusb's codes, messages and errno: an unplugged device
  fails every call on an open handle with LIBUSB_ERROR_NO_DEVICE (errno ENODEV, "No such device
  (it may have been disconnected)"), and vanishes from `enumerate_devices`; a read that times out
  raises `usb.core.USBTimeoutError` (ETIMEDOUT); an unsupported request stalls (EPIPE).
- A device comes configured (the kernel sets its configuration when it enumerates it). Claiming
  an interface a kernel driver holds fails with LIBUSB_ERROR_BUSY, and so does setting the
  configuration while an interface is held: a HID pedal must be detached from usbhid first. Detaching where no driver is bound is LIBUSB_ERROR_NOT_FOUND.
- A replugged device is a new device: a new address on the bus, its kernel drivers bound again,
  and handles opened before the unplug stay dead (ENODEV).
- IN control transfers fill the caller's buffer and return the byte count; a device cannot send
  more than wLength.

Time-outs of control transfers are not emulated (the models answer at once); a model that must
hang can raise its own `UsbTimeoutError`.
"""

from __future__ import annotations

import array
import errno
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import usb.backend
import usb.core

from drivers.sim.usb.descriptors import (
    ConfigurationDescriptor,
    EndpointDescriptor,
    EnumeratedDeviceDescriptor,
    InterfaceDescriptor,
)
from drivers.sim.usb.device import (
    DIRECTION_IN,
    DevicePoweredOffError,
    SimUsbDevice,
    UsbStallError,
)

LIBUSB_ERROR_NOT_FOUND = -5
LIBUSB_ERROR_NO_DEVICE = -4
LIBUSB_ERROR_BUSY = -6
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_PIPE = -9
LIBUSB_ERROR_INVALID_PARAM = -2

_LIBUSB_ERRORS: dict[int, tuple[str, int]] = {
    LIBUSB_ERROR_INVALID_PARAM: ("Invalid parameter", errno.EINVAL),
    LIBUSB_ERROR_NO_DEVICE: ("No such device (it may have been disconnected)", errno.ENODEV),
    LIBUSB_ERROR_NOT_FOUND: ("Entity not found", errno.ENOENT),
    LIBUSB_ERROR_BUSY: ("Resource busy", errno.EBUSY),
    LIBUSB_ERROR_TIMEOUT: ("Operation timed out", errno.ETIMEDOUT),
    LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
}


def libusb_error(code: int) -> usb.core.USBError:
    """The exception pyusb's libusb1 backend raises for `code`."""
    message, err = _LIBUSB_ERRORS[code]
    cls = usb.core.USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else usb.core.USBError
    error: usb.core.USBError = cls(message, code, err)
    return error


@dataclass(eq=False)
class _Attachment:
    """One plugging-in of a device: its place on the bus, while it lasts."""

    device: SimUsbDevice
    bus: int
    address: int
    port_number: int
    connected: bool = True
    kernel_drivers: set[int] = field(default_factory=set)
    claimed: set[int] = field(default_factory=set)
    configuration_value: int = 0


@dataclass(eq=False)
class _Handle:
    attachment: _Attachment
    open: bool = True


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    """A USB bus of emulated devices, as a pyusb backend."""

    def __init__(self, bus: int = 1) -> None:
        super().__init__()
        self._bus = bus
        self._lock = threading.Lock()
        self._ports: dict[int, SimUsbDevice] = {}
        self._attached: dict[int, _Attachment] = {}
        self._next_address = 1

    # --- the bench: plugging and unplugging -------------------------------------------------

    def attach(self, device: SimUsbDevice, port: int | None = None) -> int:
        """Give `device` a port on the hub and plug it in; returns the port number."""
        with self._lock:
            if any(existing is device for existing in self._ports.values()):
                raise ValueError("this device already has a port")
            if port is None:
                port = max(self._ports, default=0) + 1
            if port in self._ports:
                raise ValueError(f"port {port} is taken")
            self._ports[port] = device
        self.plug(device)
        return port

    def plug(self, device: SimUsbDevice) -> None:
        """Plug the cable in: the device powers up and enumerates at a new address."""
        with self._lock:
            port = self._port_of(device)
            if port in self._attached:
                return
            attachment = _Attachment(
                device=device,
                bus=self._bus,
                address=self._next_address,
                port_number=port,
                kernel_drivers=set(device.kernel_driver_interfaces),
                # the kernel configures a device when it enumerates it
                configuration_value=device.configuration.bConfigurationValue,
            )
            self._next_address = self._next_address % 127 + 1
            self._attached[port] = attachment
        device.plug()

    def unplug(self, device: SimUsbDevice) -> None:
        """Pull the cable: open handles fail with ENODEV, the device leaves the bus."""
        with self._lock:
            attachment = self._attached.pop(self._port_of(device), None)
            if attachment is None:
                return
            attachment.connected = False
        device.unplug()

    def is_plugged(self, device: SimUsbDevice) -> bool:
        with self._lock:
            return self._port_of(device) in self._attached

    def _port_of(self, device: SimUsbDevice) -> int:
        for port, candidate in self._ports.items():
            if candidate is device:
                return port
        raise ValueError("the device was never attached to this backend")

    # --- IBackend: enumeration and descriptors ----------------------------------------------

    def enumerate_devices(self) -> Iterator[_Attachment]:
        with self._lock:
            attached = list(self._attached.values())
        return iter(attached)

    def get_parent(self, dev: _Attachment) -> None:
        return None  # a root hub is not emulated

    def get_device_descriptor(self, dev: _Attachment) -> EnumeratedDeviceDescriptor:
        return EnumeratedDeviceDescriptor(
            descriptor=dev.device.descriptor,
            bus=dev.bus,
            address=dev.address,
            port_number=dev.port_number,
            port_numbers=(dev.port_number,),
        )

    def get_configuration_descriptor(
        self, dev: _Attachment, config: int
    ) -> ConfigurationDescriptor:
        if config != 0:
            raise IndexError(f"configuration {config}: the device has one")
        return dev.device.configuration

    def get_interface_descriptor(
        self, dev: _Attachment, intf: int, alt: int, config: int
    ) -> InterfaceDescriptor:
        interfaces = [
            each
            for each in self.get_configuration_descriptor(dev, config).interfaces
            if each.bAlternateSetting == alt
        ]
        if not 0 <= intf < len(interfaces):
            raise IndexError(f"interface index {intf} out of range")
        return interfaces[intf]

    def get_endpoint_descriptor(
        self, dev: _Attachment, ep: int, intf: int, alt: int, config: int
    ) -> EndpointDescriptor:
        endpoints = self.get_interface_descriptor(dev, intf, alt, config).endpoints
        if not 0 <= ep < len(endpoints):
            raise IndexError(f"endpoint index {ep} out of range")
        return endpoints[ep]

    # --- IBackend: handles and interfaces ---------------------------------------------------

    def open_device(self, dev: _Attachment) -> _Handle:
        self._check(dev)
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.open = False
        dev_handle.attachment.claimed.clear()

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        attachment = self._live(dev_handle)
        valid = (0, attachment.device.configuration.bConfigurationValue)
        if config_value not in valid:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)
        if attachment.kernel_drivers or attachment.claimed:
            raise libusb_error(LIBUSB_ERROR_BUSY)  # libusb: interfaces are in use
        attachment.configuration_value = config_value

    def get_configuration(self, dev_handle: _Handle) -> int:
        return self._live(dev_handle).configuration_value

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        self._live(dev_handle)
        if altsetting != 0:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        attachment = self._live(dev_handle)
        self._check_interface(attachment, intf)
        if intf in attachment.kernel_drivers:
            raise libusb_error(LIBUSB_ERROR_BUSY)
        attachment.claimed.add(intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        attachment = self._live(dev_handle)
        if intf not in attachment.claimed:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)
        attachment.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        attachment = self._live(dev_handle)
        self._check_interface(attachment, intf)
        return intf in attachment.kernel_drivers

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        attachment = self._live(dev_handle)
        self._check_interface(attachment, intf)
        if intf not in attachment.kernel_drivers:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)
        attachment.kernel_drivers.discard(intf)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        attachment = self._live(dev_handle)
        self._check_interface(attachment, intf)
        if intf not in attachment.device.kernel_driver_interfaces:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)  # no driver wants this interface
        if intf in attachment.claimed or intf in attachment.kernel_drivers:
            raise libusb_error(LIBUSB_ERROR_BUSY)
        attachment.kernel_drivers.add(intf)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._live(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        self._live(dev_handle)

    # --- IBackend: transfers ------------------------------------------------------------------

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        attachment = self._live(dev_handle)
        device = attachment.device
        try:
            if bmRequestType & DIRECTION_IN:
                length = len(data) * data.itemsize
                reply = device.control_in(bmRequestType, bRequest, wValue, wIndex, length)
                reply = reply[:length]
                self._live(dev_handle)  # unplugged during the request: the data never arrived
                data[: len(reply)] = array.array("B", reply)
                return len(reply)
            payload = data.tobytes()
            device.control_out(bmRequestType, bRequest, wValue, wIndex, payload)
            self._live(dev_handle)
            return len(payload)
        except UsbStallError:
            raise libusb_error(LIBUSB_ERROR_PIPE) from None

    def intr_read(
        self, dev_handle: _Handle, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        attachment = self._live(dev_handle)
        if intf not in attachment.claimed:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)
        try:
            report = attachment.device.interrupt_in(ep, timeout / 1000.0 if timeout else None)
        except DevicePoweredOffError:
            raise libusb_error(LIBUSB_ERROR_NO_DEVICE) from None
        self._live(dev_handle)
        if report is None:
            raise libusb_error(LIBUSB_ERROR_TIMEOUT)
        n = min(len(report), len(buff) * buff.itemsize)
        buff[:n] = array.array("B", report[:n])
        return n

    # --- checks ---------------------------------------------------------------------------------

    def _check(self, dev: _Attachment) -> None:
        if not dev.connected:
            raise libusb_error(LIBUSB_ERROR_NO_DEVICE)

    def _live(self, dev_handle: _Handle) -> _Attachment:
        if not dev_handle.open:
            raise libusb_error(LIBUSB_ERROR_INVALID_PARAM)
        self._check(dev_handle.attachment)
        return dev_handle.attachment

    @staticmethod
    def _check_interface(attachment: _Attachment, intf: int) -> None:
        numbers = {each.bInterfaceNumber for each in attachment.device.configuration.interfaces}
        if intf not in numbers:
            raise libusb_error(LIBUSB_ERROR_NOT_FOUND)
