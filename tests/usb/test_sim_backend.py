"""The simulated USB backend behaves like libusb under pyusb's real API."""

from __future__ import annotations

import errno
import threading
import time

import pytest
import usb.core
import usb.util

from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.descriptors import (
    CLASS_HID,
    CLASS_VENDOR,
    ConfigurationDescriptor,
    DeviceDescriptor,
    EndpointDescriptor,
    InterfaceDescriptor,
)
from drivers.sim.usb.device import SimUsbDevice, UsbStallError

VID, PID = 0x1234, 0x5678


class EchoDevice(SimUsbDevice):
    """A vendor request 0x01 stores wValue; request 0x02 reads it back as two bytes."""

    def __init__(self, *, hid: bool = False) -> None:
        interface = InterfaceDescriptor(
            0, CLASS_HID if hid else CLASS_VENDOR, endpoints=(EndpointDescriptor(0x81),)
        )
        super().__init__(
            DeviceDescriptor(VID, PID),
            ConfigurationDescriptor((interface,)),
            {1: "Maker", 2: "Echo", 3: "SN42"},
            kernel_driver_interfaces=frozenset({0}) if hid else frozenset(),
        )
        self.value = 0
        self.power_ups = 0

    def on_power_up(self) -> None:
        self.power_ups += 1
        self.value = 0

    def vendor_or_class_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes
    ) -> None:
        if request != 0x01:
            raise UsbStallError("unknown")
        self.value = value

    def vendor_or_class_in(
        self, request_type: int, request: int, value: int, index: int, length: int
    ) -> bytes:
        if request != 0x02:
            raise UsbStallError("unknown")
        return self.value.to_bytes(2, "little") + b"\xee" * 8


@pytest.fixture
def bus() -> SimUsbBackend:
    return SimUsbBackend()


def test_find_reads_descriptors_and_strings_through_endpoint_zero(bus: SimUsbBackend) -> None:
    bus.attach(EchoDevice())
    dev = usb.core.find(idVendor=VID, idProduct=PID, backend=bus)
    assert dev is not None
    assert (dev.manufacturer, dev.product, dev.serial_number) == ("Maker", "Echo", "SN42")
    interface = dev.get_active_configuration()[(0, 0)]
    assert interface.bInterfaceClass == CLASS_VENDOR
    assert [ep.bEndpointAddress for ep in interface] == [0x81]
    assert usb.core.find(idVendor=VID, idProduct=PID + 1, backend=bus) is None


def test_vendor_requests_reach_the_model_and_in_data_is_capped_at_wlength(
    bus: SimUsbBackend,
) -> None:
    device = EchoDevice()
    bus.attach(device)
    dev = usb.core.find(idVendor=VID, backend=bus)
    assert dev.ctrl_transfer(0x40, 0x01, 0xBEEF, 0, None) == 0
    assert device.value == 0xBEEF
    assert bytes(dev.ctrl_transfer(0xC0, 0x02, 0, 0, 3)) == b"\xef\xbe\xee"


def test_an_unsupported_request_stalls_with_epipe(bus: SimUsbBackend) -> None:
    bus.attach(EchoDevice())
    dev = usb.core.find(idVendor=VID, backend=bus)
    with pytest.raises(usb.core.USBError) as caught:
        dev.ctrl_transfer(0x40, 0x7F, 0, 0, None)
    assert caught.value.errno == errno.EPIPE


def test_unplugged_device_fails_with_enodev_and_vanishes_from_find(bus: SimUsbBackend) -> None:
    device = EchoDevice()
    bus.attach(device)
    dev = usb.core.find(idVendor=VID, backend=bus)
    dev.ctrl_transfer(0x40, 0x01, 7, 0, None)
    bus.unplug(device)
    with pytest.raises(usb.core.USBError) as caught:
        dev.ctrl_transfer(0x40, 0x01, 8, 0, None)
    assert caught.value.errno == errno.ENODEV
    assert "No such device" in str(caught.value)
    assert usb.core.find(idVendor=VID, backend=bus) is None


def test_replugged_device_is_a_new_power_up_at_a_new_address_and_old_handles_stay_dead(
    bus: SimUsbBackend,
) -> None:
    device = EchoDevice()
    bus.attach(device)
    old = usb.core.find(idVendor=VID, backend=bus)
    old.ctrl_transfer(0x40, 0x01, 7, 0, None)
    bus.unplug(device)
    bus.plug(device)
    new = usb.core.find(idVendor=VID, backend=bus)
    assert new.address != old.address
    assert device.power_ups == 2 and device.value == 0
    with pytest.raises(usb.core.USBError) as caught:
        old.ctrl_transfer(0x40, 0x01, 8, 0, None)
    assert caught.value.errno == errno.ENODEV
    new.ctrl_transfer(0x40, 0x01, 9, 0, None)
    assert device.value == 9


def test_a_hid_interface_is_busy_until_its_kernel_driver_is_detached(bus: SimUsbBackend) -> None:
    device = EchoDevice(hid=True)
    bus.attach(device)
    dev = usb.core.find(idVendor=VID, backend=bus)
    assert dev.is_kernel_driver_active(0)
    with pytest.raises(usb.core.USBError) as caught:
        dev.read(0x81, 8, 10)
    assert caught.value.errno == errno.EBUSY
    dev.detach_kernel_driver(0)
    assert not dev.is_kernel_driver_active(0)
    device.queue_report(0x81, b"\x01\x00")
    assert bytes(dev.read(0x81, 8, 100)) == b"\x01\x00"
    usb.util.release_interface(dev, 0)
    dev.attach_kernel_driver(0)
    assert dev.is_kernel_driver_active(0)


def test_interrupt_read_times_out_with_etimedout(bus: SimUsbBackend) -> None:
    bus.attach(EchoDevice())
    dev = usb.core.find(idVendor=VID, backend=bus)
    with pytest.raises(usb.core.USBTimeoutError) as caught:
        dev.read(0x81, 8, 5)
    assert caught.value.errno == errno.ETIMEDOUT


def test_unplug_wakes_a_blocked_interrupt_read_with_enodev(bus: SimUsbBackend) -> None:
    device = EchoDevice()
    bus.attach(device)
    dev = usb.core.find(idVendor=VID, backend=bus)
    dev.set_configuration()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            dev.read(0x81, 8, 5000)
        except usb.core.USBError as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    started = time.monotonic()
    thread.start()
    time.sleep(0.02)
    bus.unplug(device)
    thread.join(2.0)
    assert time.monotonic() - started < 1.0
    assert len(errors) == 1 and getattr(errors[0], "errno", None) == errno.ENODEV
