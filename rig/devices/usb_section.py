"""The base of a USB device's section: found by its ids through libusb, or on the simulator's bus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from drivers.transport.discovery import PortResolutionError, SerialPortInfo
from drivers.transport.usb_remote import BUS_SOCKET_NAME
from rig.config.ports import UsbPort
from rig.devices.section import DeviceSection
from rig.devices.usb_port import UsbPortAddress, UsbPortError, libusb_port, sim_bus_port


class UsbDeviceSection(DeviceSection):
    """`port = { usb = { vid = ..., pid = ..., serial_number = ... } }` on a bench (the serial
    number tells identical devices apart), `{ sim = "<name>" }` on the simulator."""

    def sim_port(self, name: str, link_dir: Path) -> str:
        return sim_bus_port(link_dir, BUS_SOCKET_NAME)

    def real_port(self, attached: Sequence[SerialPortInfo]) -> str:
        spec = self.port
        if isinstance(spec, UsbPort):
            return libusb_port(spec.usb.vid, spec.usb.pid, spec.usb.serial_number)
        raise PortResolutionError(
            f"{self._section}.port: a USB device is found by its ids, not a path: expected "
            '{ usb = { vid = ..., pid = ... } } or { sim = "..." }'
        )

    def port_override(self, override: str, attached: Sequence[SerialPortInfo]) -> str:
        try:
            UsbPortAddress.parse(override)
        except UsbPortError as exc:
            raise PortResolutionError(str(exc)) from None
        return override
