"""What is plugged in: serial ports, USB devices, and which profile port spec names which port.

Read-only: listing never opens a serial port or claims a USB interface. USB string descriptors
(serial number, product) are read where the OS allows it without extra permissions; where it
does not, the field is None and the CLI shows "?".

`resolve_port(spec, ports)` turns a profile's path or usb port spec into the device path to open,
and fails loudly when no port, or more than one, matches. The specs are typed structurally
(`PathSpecLike`, `UsbSpecLike`, `SimSpecLike`), which `rig.config.PortSpec` satisfies: a transport
module does not import the rig layer above it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

__all__ = [
    "BY_ID_DIR",
    "KNOWN_USB_DEVICES",
    "ConsoleSpecLike",
    "PathSpecLike",
    "PortResolutionError",
    "PortSpecLike",
    "SerialPortInfo",
    "SimSpecLike",
    "UsbDeviceInfo",
    "UsbScan",
    "UsbSpecLike",
    "describe_spec",
    "known_device",
    "list_serial_ports",
    "list_usb_devices",
    "resolve_port",
]

BY_ID_DIR: Final = Path("/dev/serial/by-id")

# (vid, pid) -> name; pid None matches any product of that vendor.
KNOWN_USB_DEVICES: Final[dict[tuple[int, int | None], str]] = {
    # Pololu Tic stepper controllers (basket actuator); protocols.md.
    (0x1FFB, 0x00B3): "Pololu Tic T825 (basket actuator)",
    (0x1FFB, 0x00B5): "Pololu Tic T834 (basket actuator)",
    (0x1FFB, 0x00BD): "Pololu Tic T500 (basket actuator)",
    (0x1FFB, 0x00C3): "Pololu Tic N825 (basket actuator)",
    (0x1FFB, 0x00C9): "Pololu Tic T249 (basket actuator)",
    (0x1FFB, 0x00CB): "Pololu Tic 36v4 (basket actuator)",
    (0x1FFB, None): "Pololu device",
    # Foot pedals.
    (0x05F3, 0x00FF): "VEC Infinity IN-USB-2 foot pedal",
    (0x0C45, 0x7403): "PCsensor foot switch",
    (0x0C45, 0x7404): "PCsensor foot switch",
    (0x413D, 0x2107): "PCsensor/iKKEGOL foot switch",
    (0x1A86, 0xE026): "PCsensor/iKKEGOL foot switch",
    (0x3553, 0xB001): "PCsensor/iKKEGOL foot switch",
    # Generic USB-serial adaptors: what an NE-1000 pump is usually behind. Shown, not assumed.
    (0x0403, None): "FTDI USB-serial adaptor (NE-1000 pump?)",
    (0x067B, None): "Prolific USB-serial adaptor (NE-1000 pump?)",
}


def known_device(vid: int | None, pid: int | None) -> str | None:
    """The name of a device this rig knows, or None."""
    if vid is None:
        return None
    return KNOWN_USB_DEVICES.get((vid, pid)) or KNOWN_USB_DEVICES.get((vid, None))


@dataclass(frozen=True)
class SerialPortInfo:
    """One serial port, as list_ports reports it plus its /dev/serial/by-id link."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    description: str | None = None
    by_id: str | None = None

    @classmethod
    def from_list_port_info(cls, info: ListPortInfo, by_id: str | None = None) -> SerialPortInfo:
        description = info.description if info.description not in (None, "n/a") else None
        return cls(
            device=info.device,
            vid=info.vid,
            pid=info.pid,
            serial_number=info.serial_number,
            manufacturer=info.manufacturer,
            product=info.product,
            description=description,
            by_id=by_id,
        )

    @property
    def vid_pid(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def known_as(self) -> str | None:
        return known_device(self.vid, self.pid)

    def names(self) -> set[str]:
        """Every path this port answers to (device, by-id link, and the link's target)."""
        names = {self.device, os.path.realpath(self.device)}
        if self.by_id is not None:
            names.add(self.by_id)
        return names


def _by_id_links(by_id_dir: Path) -> dict[str, str]:
    """Real device path -> /dev/serial/by-id link (empty where udev made none)."""
    links: dict[str, str] = {}
    try:
        entries = sorted(by_id_dir.iterdir())
    except OSError:
        return links
    for entry in entries:
        links.setdefault(os.path.realpath(entry), str(entry))
    return links


def list_serial_ports(by_id_dir: Path = BY_ID_DIR) -> list[SerialPortInfo]:
    """The serial ports attached now, sorted by device path."""
    links = _by_id_links(by_id_dir)
    ports = [
        SerialPortInfo.from_list_port_info(info, links.get(os.path.realpath(info.device)))
        for info in list_ports.comports()
    ]
    return sorted(ports, key=lambda p: p.device)


@dataclass(frozen=True)
class UsbDeviceInfo:
    bus: int
    address: int
    vid: int
    pid: int
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def known_as(self) -> str | None:
        return known_device(self.vid, self.pid)


@dataclass(frozen=True)
class UsbScan:
    """USB devices found, or why none could be listed (`error`, e.g. no libusb backend)."""

    devices: list[UsbDeviceInfo] = field(default_factory=list)
    error: str | None = None


def _usb_string(dev: Any, index_attr: str) -> str | None:
    import usb.util

    try:
        index = getattr(dev, index_attr)
        if not index:
            return None
        text = usb.util.get_string(dev, index)
    except Exception:  # permissions, no langid, device gone: the field is just unknown
        return None
    return str(text) if text else None


def list_usb_devices(backend: Any = None) -> UsbScan:
    """USB devices through pyusb; never raises (a missing libusb is reported in `error`)."""
    try:
        import usb.core
    except ImportError as exc:  # pragma: no cover - pyusb is a dependency
        return UsbScan(error=f"pyusb is not installed ({exc})")
    try:
        found = list(usb.core.find(find_all=True, backend=backend) or [])
    except usb.core.NoBackendError:
        return UsbScan(error="no pyusb backend: libusb-1.0 is not installed or not found")
    except Exception as exc:  # USBError and friends: list nothing, say why
        return UsbScan(error=f"USB enumeration failed: {exc}")
    devices = [
        UsbDeviceInfo(
            bus=int(dev.bus or 0),
            address=int(dev.address or 0),
            vid=int(dev.idVendor),
            pid=int(dev.idProduct),
            serial_number=_usb_string(dev, "iSerialNumber"),
            manufacturer=_usb_string(dev, "iManufacturer"),
            product=_usb_string(dev, "iProduct"),
        )
        for dev in found
    ]
    return UsbScan(devices=sorted(devices, key=lambda d: (d.bus, d.address)))


@runtime_checkable
class PathSpecLike(Protocol):
    """`{ path = "/dev/..." }`."""

    @property
    def path(self) -> str: ...


class UsbIdLike(Protocol):
    @property
    def vid(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def serial_number(self) -> str | None: ...


@runtime_checkable
class UsbSpecLike(Protocol):
    """`{ usb = { vid = ..., pid = ..., serial_number = ... } }`."""

    @property
    def usb(self) -> UsbIdLike: ...


@runtime_checkable
class SimSpecLike(Protocol):
    """`{ sim = "pump" }`."""

    @property
    def sim(self) -> str: ...


@runtime_checkable
class ConsoleSpecLike(Protocol):
    """`{ console = "surgeon" }`."""

    @property
    def console(self) -> str: ...


PortSpecLike = PathSpecLike | UsbSpecLike | SimSpecLike | ConsoleSpecLike


class PortResolutionError(LookupError):
    """No port, or more than one, matches a port spec (or the spec is the simulator's)."""


def describe_spec(spec: PortSpecLike) -> str:
    """A port spec as the profile spells it."""
    if isinstance(spec, PathSpecLike):
        return f'{{ path = "{spec.path}" }}'
    if isinstance(spec, SimSpecLike):
        return f'{{ sim = "{spec.sim}" }}'
    if isinstance(spec, ConsoleSpecLike):
        return f'{{ console = "{spec.console}" }}'
    assert isinstance(spec, UsbSpecLike)
    serial = f', serial_number = "{spec.usb.serial_number}"' if spec.usb.serial_number else ""
    return f"{{ usb = {{ vid = 0x{spec.usb.vid:04x}, pid = 0x{spec.usb.pid:04x}{serial} }} }}"


def _describe_port(port: SerialPortInfo) -> str:
    ids = port.vid_pid or "no USB id"
    serial = f" serial {port.serial_number}" if port.serial_number else ""
    return f"{port.device} ({ids}{serial})"


def resolve_port(spec: PortSpecLike, ports: Iterable[SerialPortInfo]) -> str:
    """The device path to open for `spec`, checked against the attached `ports`.

    - path spec: the path as given (a by-id link stays a link, so reopening after a replug
      finds the same adaptor), if an attached port answers to it or it is a pseudo-terminal;
    - usb spec: the device path of the one port with that vid, pid (and serial number, if given).

    Raises PortResolutionError when none or several ports match, for sim specs (the
    simulator supplies their path at run time) and for console specs (no serial port: the
    device is plugged into a console).
    """
    candidates: Sequence[SerialPortInfo] = list(ports)
    if isinstance(spec, SimSpecLike):
        raise PortResolutionError(
            f"{describe_spec(spec)} is supplied by the simulator at run time, not attached"
        )
    if isinstance(spec, ConsoleSpecLike):
        raise PortResolutionError(
            f"{describe_spec(spec)}: the device is plugged into a console, not into this machine"
        )
    if isinstance(spec, PathSpecLike):
        wanted = {spec.path, os.path.realpath(spec.path)}
        if any(port.names() & wanted for port in candidates):
            return spec.path
        if _is_pseudo_terminal(spec.path):
            return spec.path
        raise PortResolutionError(
            f"{describe_spec(spec)}: no attached serial port has that path" + _seen(candidates)
        )
    assert isinstance(spec, UsbSpecLike)
    match = spec.usb
    matches = [
        port
        for port in candidates
        if port.vid == match.vid
        and port.pid == match.pid
        and (match.serial_number is None or port.serial_number == match.serial_number)
    ]
    if len(matches) == 1:
        return matches[0].device
    if not matches:
        raise PortResolutionError(
            f"{describe_spec(spec)}: no attached serial port matches" + _seen(candidates)
        )
    listed = ", ".join(_describe_port(p) for p in matches)
    hint = "" if match.serial_number else "; add serial_number to tell them apart"
    raise PortResolutionError(f"{describe_spec(spec)}: {len(matches)} ports match ({listed}){hint}")


def _is_pseudo_terminal(path: str) -> bool:
    """A path that leads to an existing pseudo-terminal: pyserial's port listing never shows
    those, yet a simulator's device or a test's stand-in for one is exactly that."""
    target = os.path.realpath(path)
    return target.startswith("/dev/pts/") and os.path.exists(target)


def _seen(ports: Sequence[SerialPortInfo]) -> str:
    if not ports:
        return " (no serial ports attached)"
    return " (attached: " + ", ".join(_describe_port(p) for p in ports) + ")"
