"""The rig's devices, built from the profile's `[devices]` sections and held by name.

The daemon, the state's `devices` object, the telemetry's link statistics, the launcher's ports
and the interlock's facts all iterate this registry; none of them names a device.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

from drivers.transport.mqtt import JsonObject
from rig.api.roles import Role
from rig.devices.catalog import DEVICE_TYPES
from rig.devices.contract import Device, DeviceContext, ForwardingError
from rig.safety.interlock import ActuatorSlots, Interlock

D = TypeVar("D", bound=Device)


class DeviceRegistry:
    def __init__(self, ports: Mapping[str, str], context: DeviceContext) -> None:
        sections = context.profile.devices.sections()
        unknown = set(ports) - set(sections)
        if unknown:
            raise ValueError(
                f"ports for {', '.join(sorted(unknown))}: not devices of this profile "
                f"(expected {', '.join(sections)})"
            )
        self._devices: dict[str, Device] = {}
        for name, section in sections.items():
            if name not in ports:
                raise ValueError(f"devices.{name}: no port resolved for it")
            try:
                self._devices[name] = DEVICE_TYPES[name](section, ports[name], context)
            except ValueError as exc:
                raise ValueError(f"devices.{name}: {exc}") from exc

    def __iter__(self) -> Iterator[Device]:
        return iter(self._devices.values())

    def __getitem__(self, name: str) -> Device:
        return self._devices[name]

    def one(self, kind: type[D]) -> D:
        """The device of type `kind` (for the parts of the rig built around one device, such
        as the self-test of the pump's and the board's own safeties)."""
        found = [device for device in self if isinstance(device, kind)]
        if len(found) != 1:
            raise LookupError(f"expected one {kind.__name__}, found {len(found)}")
        return found[0]

    def forward(self, name: str, role: Role, report: object) -> JsonObject:
        """A station forwards the state of device `name` (plugged into its console)."""
        device = self._devices.get(name)
        if device is None:
            raise ForwardingError(f"this rig has no {name} (no [devices.{name}] section)")
        return device.forwarded(role, report)

    def build_interlock(self) -> Interlock:
        """The interlock, holding every actuator the devices provide."""
        slots = ActuatorSlots()
        for device in self:
            device.provide(slots)
        return slots.build()
