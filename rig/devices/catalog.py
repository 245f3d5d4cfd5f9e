"""The device modules by name: what each `[devices.<name>]` section is built into.

Adding a device adds one line here, next to its section in rig/devices/sections.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from rig.devices.basket import BasketDevice
from rig.devices.board import BoardDevice
from rig.devices.camera import CameraDevice
from rig.devices.contract import Device, DeviceContext
from rig.devices.pedal import PedalDevice, pedal_device
from rig.devices.pump import PumpDevice

DeviceFactory = Callable[[Any, str, DeviceContext], Device]
"""(its section, its port, the context) -> the device."""

DEVICE_TYPES: Final[Mapping[str, DeviceFactory]] = {
    PumpDevice.name: PumpDevice,
    BoardDevice.name: BoardDevice,
    PedalDevice.name: pedal_device,
    BasketDevice.name: BasketDevice,
    CameraDevice.name: CameraDevice,
}
