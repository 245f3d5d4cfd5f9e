"""The base of a device's profile section, `[devices.<name>]`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import model_validator

from drivers.transport.discovery import SerialPortInfo, resolve_port
from rig.config.base import Section
from rig.config.errors import Problem, cross_check
from rig.config.ports import ConsolePort, PathPort, PortSpec

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

    def sim_baudrate(self) -> int | None:
        """The line rate the simulator's emulator must use (None: not on a serial line)."""
        return None

    def sim_port(self, name: str, link_dir: Path) -> str:
        """What the daemon opens when the simulator supplies the device: its pseudo-terminal."""
        return str(link_dir / name)

    def real_port(self, attached: Sequence[SerialPortInfo]) -> str:
        """What the daemon opens for the section's path or usb form, among the serial ports
        attached now (PortResolutionError when none or several match)."""
        return resolve_port(self.port, attached)

    def port_override(self, override: str, attached: Sequence[SerialPortInfo]) -> str:
        """What the daemon opens for `--<name>-port OVERRIDE`: a serial device's path."""
        return resolve_port(PathPort(path=override), attached)

    def hybrid_warning(self, name: str, real: frozenset[str]) -> str | None:
        """What a bench engineer must know when the devices in `real` are real and the others
        simulated (None: nothing)."""
        del name, real
        return None


class SerialDeviceSection(DeviceSection):
    """A device on a serial line: its section names the line's rate (each device registers its
    own default and bounds for it)."""

    baudrate: int

    def sim_baudrate(self) -> int | None:
        return self.baudrate

    @model_validator(mode="after")
    def _attached_to_the_rig(self) -> Self:
        if isinstance(self.port, ConsolePort):
            cross_check(
                [
                    Problem(
                        f"{self._section}.port",
                        {"console": self.port.console},
                        "a serial device is attached to the rig: expected a path, usb or sim port",
                    )
                ]
            )
        return self
