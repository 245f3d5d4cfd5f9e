"""Where a device is attached: the path, usb, sim and console forms of a port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
)

from rig.config.base import Section


class PathPort(Section):
    """`{ path = "/dev/serial/by-id/..." }`: a fixed device path."""

    path: str = Field(min_length=1)


class UsbMatch(Section):
    """USB identity of a serial adaptor; serial_number tells identical adaptors apart."""

    vid: int = Field(ge=0, le=0xFFFF)
    pid: int = Field(ge=0, le=0xFFFF)
    serial_number: str | None = Field(default=None, min_length=1)


class UsbPort(Section):
    """`{ usb = { vid = 0x0403, pid = 0x6001, serial_number = "A10K1XYZ" } }`."""

    usb: UsbMatch


class SimPort(Section):
    """`{ sim = "pump" }`: the simulator supplies the pseudo-terminal path at run time."""

    sim: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")


class ConsolePort(Section):
    """`{ console = "surgeon" }`: the device is plugged into a console, which forwards its
    state over the API as that role's station (the foot pedal at the surgeon's console)."""

    console: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")


PORT_FORMS: Final = (
    '{ path = "/dev/ttyUSB0" }, '
    '{ usb = { vid = 0x0403, pid = 0x6001, serial_number = "A10K1XYZ" } } '
    '(serial_number optional), { sim = "pump" } or { console = "surgeon" }'
)

PORT_TAGS: Final = {
    "path": "path form",
    "usb": "usb form",
    "sim": "sim form",
    "console": "console form",
}


def _port_form(value: Any) -> str | None:
    if isinstance(value, PathPort | UsbPort | SimPort | ConsolePort):
        return PORT_TAGS[next(iter(type(value).model_fields))]
    if not isinstance(value, Mapping):
        return None
    present = [key for key in PORT_TAGS if key in value]
    return PORT_TAGS[present[0]] if len(present) == 1 else None


TAG_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    PORT_TAGS["path"]: PathPort,
    PORT_TAGS["usb"]: UsbPort,
    PORT_TAGS["sim"]: SimPort,
    PORT_TAGS["console"]: ConsolePort,
}

PortSpec = Annotated[
    Annotated[PathPort, Tag(PORT_TAGS["path"])]
    | Annotated[UsbPort, Tag(PORT_TAGS["usb"])]
    | Annotated[SimPort, Tag(PORT_TAGS["sim"])]
    | Annotated[ConsolePort, Tag(PORT_TAGS["console"])],
    Discriminator(
        _port_form,
        custom_error_type="port_spec",
        custom_error_message=f"expected exactly one of {PORT_FORMS}",
    ),
]
"""Where a device is attached: exactly one of the path, usb, sim or console forms."""
