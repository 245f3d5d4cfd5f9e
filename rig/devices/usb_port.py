"""Where a USB device is reached: libusb on this machine, or the simulator's bus.

The port a USB device's module is given (`--<name>-port`, or resolved from its section) is a
string, like a serial device's path:

- `usb:VVVV:PPPP` or `usb:VVVV:PPPP:SERIAL`: libusb, the device with these ids (hex) and serial;
- `usb:` alone: libusb, the ids the device's section gives (its defaults);
- `usb-sim:/path/to/usb.sock`: the simulator's bus, served on that socket (`rig sim` supplies
  this for a `{ sim = ... }` port), the ids again from the section;
- `console:STATION`: not on this machine at all: plugged into the console of STATION (a role),
  which forwards its state over the API (`{ console = "surgeon" }`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drivers.transport.usb import UsbDeviceMatch
from drivers.transport.usb_remote import RemoteUsbBackend

LIBUSB_PREFIX = "usb:"
SIM_PREFIX = "usb-sim:"
CONSOLE_PREFIX = "console:"
FORMS = "usb:, usb:VVVV:PPPP[:SERIAL] (hex ids) or usb-sim:SOCKET"


class UsbPortError(ValueError):
    pass


@dataclass(frozen=True)
class UsbPortAddress:
    bus_socket: Path | None
    """The simulator's bus; None for libusb."""
    vendor_id: int | None = None
    product_id: int | None = None
    serial_number: str | None = None

    @classmethod
    def parse(cls, port: str) -> UsbPortAddress:
        if port.startswith(SIM_PREFIX):
            socket = port.removeprefix(SIM_PREFIX)
            if not socket:
                raise UsbPortError(f"port {port!r}: no socket path (expected {FORMS})")
            return cls(Path(socket))
        if not port.startswith(LIBUSB_PREFIX):
            raise UsbPortError(f"port {port!r}: expected {FORMS}")
        rest = port.removeprefix(LIBUSB_PREFIX)
        if not rest:
            return cls(None)
        parts = rest.split(":", 2)
        try:
            if len(parts) < 2:
                raise ValueError("both ids needed")
            vendor_id, product_id = int(parts[0], 16), int(parts[1], 16)
            if not (0 <= vendor_id <= 0xFFFF and 0 <= product_id <= 0xFFFF):
                raise ValueError("ids are 16-bit")
        except ValueError as exc:
            raise UsbPortError(f"port {port!r}: {exc} (expected {FORMS})") from None
        serial = parts[2] if len(parts) == 3 and parts[2] else None
        return cls(None, vendor_id, product_id, serial)

    def match(self, default: UsbDeviceMatch) -> UsbDeviceMatch:
        """The device to open: the port's ids where it names them, else the section's."""
        if self.vendor_id is None or self.product_id is None:
            return UsbDeviceMatch(
                default.vendor_id, default.product_ids, self.serial_number or default.serial_number
            )
        return UsbDeviceMatch(self.vendor_id, (self.product_id,), self.serial_number)

    def backend(self) -> object | None:
        """pyusb's backend: None (libusb) or the simulator's bus."""
        return None if self.bus_socket is None else RemoteUsbBackend(self.bus_socket)


def libusb_port(vendor_id: int, product_id: int, serial_number: str | None) -> str:
    return f"{LIBUSB_PREFIX}{vendor_id:04x}:{product_id:04x}:{serial_number or ''}"


def console_port(station: str) -> str:
    return f"{CONSOLE_PREFIX}{station}"


def sim_bus_port(link_dir: Path, socket_name: str) -> str:
    return f"{SIM_PREFIX}{link_dir / socket_name}"
