"""The base of a device's profile section, `[devices.<name>]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rig.config.base import Section
from rig.config.errors import Problem
from rig.config.ports import PortSpec

if TYPE_CHECKING:
    from rig.config.profile import RigProfile


class DeviceSection(Section):
    """Where the device is attached, plus whatever its module reads; `agrees_with` is where a
    device checks its settings against the rest of the profile."""

    port: PortSpec

    def agrees_with(self, profile: RigProfile) -> list[Problem]:
        """Problems between this section and the others (none unless a device says so)."""
        del profile
        return []
