"""`[devices]`: one section per device the rig has, each defined by that device's module.

Adding a device adds its section here (one line); everything else finds it by iterating
`DevicesConfig.sections()`.
"""

from __future__ import annotations

from typing import ClassVar

from rig.config.base import Section
from rig.devices.board_config import BoardDeviceConfig
from rig.devices.pump_config import PumpDeviceConfig
from rig.devices.section import DeviceSection


class DevicesConfig(Section):
    _section: ClassVar[str] = "devices"

    pump: PumpDeviceConfig
    board: BoardDeviceConfig

    def sections(self) -> dict[str, DeviceSection]:
        """Each device's section by device name, in the profile's order."""
        sections: dict[str, DeviceSection] = {}
        for name in type(self).model_fields:
            section = getattr(self, name)
            if not isinstance(section, DeviceSection):
                raise TypeError(f"devices.{name}: {type(section).__name__} is not a DeviceSection")
            sections[name] = section
        return sections


def device_names() -> list[tuple[str, str]]:
    """(name, what it is) of every device a profile has, before any profile is read: for the
    command line's `--<name>-port` options."""
    names = []
    for name, field in DevicesConfig.model_fields.items():
        section = field.annotation
        doc = section.__doc__ if isinstance(section, type) else None
        what = (doc or name).strip().splitlines()[0].rstrip(".")
        names.append((name, what[:1].lower() + what[1:]))
    return names
