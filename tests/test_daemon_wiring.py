"""The daemon's wiring between drivers and the fluid loop, without devices or a broker."""

from __future__ import annotations

from drivers.ioboard import PressureSample
from rig.config import DEFAULT_PROFILE, load_profile
from rig.daemon import BrokerAddress, RigDaemon
from rig.devices.board import BoardDevice
from tests.support.ports import unused_ports

WRAP_US = 2**32


async def test_samples_reach_the_controller_on_the_extended_board_clock() -> None:
    """The board's raw 32-bit microseconds wrap every 71.6 min; the loop must never see it."""
    profile = load_profile(DEFAULT_PROFILE)
    daemon = RigDaemon(profile, unused_ports(profile), BrokerAddress("127.0.0.1", 1))
    board = daemon.devices.one(BoardDevice)
    for counter, raw_us in enumerate((WRAP_US - 2000, 0, 2000), start=1):
        full_us = raw_us if raw_us >= WRAP_US - 2000 else WRAP_US + raw_us
        board._on_sample(
            PressureSample(
                raw_us, counter, 17.0, board_time_s=full_us / 1e6, rx_time_s=full_us / 1e6
            )
        )
        assert daemon.controller.last_sample_t_us == full_us
