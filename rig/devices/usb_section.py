"""The base of a USB device's section: found by its ids through libusb, or on the simulator's bus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

from pydantic import model_validator

from drivers.transport.discovery import PortResolutionError, SerialPortInfo
from drivers.transport.usb_remote import BUS_SOCKET_NAME
from rig.config.errors import Problem, cross_check
from rig.config.ports import ConsolePort, PathPort, UsbPort
from rig.devices.section import DeviceSection
from rig.devices.usb_port import (
    CONSOLE_PREFIX,
    UsbPortAddress,
    UsbPortError,
    console_port,
    libusb_port,
    sim_bus_port,
)


class UsbDeviceSection(DeviceSection):
    """`port = { usb = { vid = ..., pid = ..., serial_number = ... } }` on a bench (the serial
    number tells identical devices apart), `{ sim = "<name>" }` on the simulator; a device that
    may be plugged into a console instead (`{ console = "surgeon" }`, the pedal) says so with
    `console_attachable`."""

    console_attachable: ClassVar[bool] = False

    def on_usb(self) -> bool:
        """Whether the device is reached through libusb; a device that may be on a serial line
        instead (the basket's Tic, on its TTL port) says when it is not, and its port is then
        a serial device's (path, usb adaptor or the simulator's pty)."""
        return True

    @model_validator(mode="after")
    def _port_form(self) -> Self:
        spec = self.port
        if not self.on_usb():
            if isinstance(spec, ConsolePort):
                cross_check(
                    [
                        Problem(
                            f"{self._section}.port",
                            {"console": spec.console},
                            "a serial device is attached to the rig: expected a path, usb or "
                            "sim port",
                        )
                    ]
                )
            return self
        expected = (
            'expected { usb = ... }, { sim = "..." } or { console = "<role>" }'
            if self.console_attachable
            else 'expected { usb = ... } or { sim = "..." }: a USB device is found by its ids'
        )
        problem = None
        if isinstance(spec, PathPort):
            problem = Problem(f"{self._section}.port", {"path": spec.path}, expected)
        elif isinstance(spec, ConsolePort) and not self.console_attachable:
            problem = Problem(f"{self._section}.port", {"console": spec.console}, expected)
        if problem is not None:
            cross_check([problem])
        return self

    def sim_port(self, name: str, link_dir: Path) -> str:
        if not self.on_usb():
            return super().sim_port(name, link_dir)
        return sim_bus_port(link_dir, BUS_SOCKET_NAME)

    def real_port(self, attached: Sequence[SerialPortInfo]) -> str:
        if not self.on_usb():
            return super().real_port(attached)
        spec = self.port
        if isinstance(spec, UsbPort):
            return libusb_port(spec.usb.vid, spec.usb.pid, spec.usb.serial_number)
        if isinstance(spec, ConsolePort):
            return console_port(spec.console)
        raise PortResolutionError(
            f"{self._section}.port: a USB device is found by its ids, not a path: expected "
            '{ usb = { vid = ..., pid = ... } } or { sim = "..." }'
        )  # the section's validator refuses the other forms; a sim port is the simulator's

    def port_override(self, override: str, attached: Sequence[SerialPortInfo]) -> str:
        if not self.on_usb():
            return super().port_override(override, attached)
        if override.startswith(CONSOLE_PREFIX) and self.console_attachable:
            return override
        try:
            UsbPortAddress.parse(override)
        except UsbPortError as exc:
            raise PortResolutionError(str(exc)) from None
        return override
