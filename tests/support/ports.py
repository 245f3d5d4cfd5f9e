"""Ports for every device of a profile, where nothing will be opened: a daemon built for a test
that never runs its devices."""

from __future__ import annotations

from pathlib import Path

from rig.config import RigProfile

NOWHERE = Path("/nonexistent")


def unused_ports(profile: RigProfile) -> dict[str, str]:
    """The simulator's ports for each device, in a directory that does not exist."""
    return {
        name: section.sim_port(name, NOWHERE)
        for name, section in profile.devices.sections().items()
    }
