"""`[devices]`: one section per device the rig has, each defined by that device's module.

Adding a device adds its section here (one line); everything else finds it by iterating
`DevicesConfig.sections()`. The pump and the I/O board are the fluid path, which every rig has;
the other devices are optional (`None`: this rig has none, a bench rig for fluid work, say).
"""

from __future__ import annotations

from typing import ClassVar, get_args

from rig.config.base import Section
from rig.devices.basket_config import BasketDeviceConfig
from rig.devices.board_config import BoardDeviceConfig
from rig.devices.camera_config import CameraDeviceConfig
from rig.devices.pedal_config import PedalDeviceConfig
from rig.devices.pump_config import PumpDeviceConfig
from rig.devices.section import DeviceSection


class DevicesConfig(Section):
    _section: ClassVar[str] = "devices"

    pump: PumpDeviceConfig
    board: BoardDeviceConfig
    pedal: PedalDeviceConfig | None = None
    basket: BasketDeviceConfig | None = None
    camera: CameraDeviceConfig | None = None

    def sections(self) -> dict[str, DeviceSection]:
        """Each device's section by device name, in the profile's order."""
        sections: dict[str, DeviceSection] = {}
        for name in type(self).model_fields:
            section = getattr(self, name)
            if section is None:
                continue  # an optional device this rig does not have
            if not isinstance(section, DeviceSection):
                raise TypeError(f"devices.{name}: {type(section).__name__} is not a DeviceSection")
            sections[name] = section
        return sections


def device_names() -> list[tuple[str, str]]:
    """(name, what it is) of every device a profile has, before any profile is read: for the
    command line's `--<name>-port` options."""
    names = []
    for name, field in DevicesConfig.model_fields.items():
        # an optional device's annotation is `Section | None`
        section = next(
            (t for t in (field.annotation, *get_args(field.annotation)) if isinstance(t, type)),
            None,
        )
        doc = section.__doc__ if section is not None else None
        what = (doc or name).strip().splitlines()[0].rstrip(".")
        names.append((name, what[:1].lower() + what[1:]))
    return names
