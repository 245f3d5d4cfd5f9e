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
