"""`pytest hil_tests --bench-profile FILE` resolves its devices from the profile; a device on a
pseudo-terminal (an emulator standing in for one, a hybrid bench) is accepted too."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.transport.discovery import PortResolutionError
from hil_tests.conftest import _resolve_bench
from rig.cli.run_cmds import _real_ports
from rig.config import DEFAULT_PROFILE, PathPort, load_profile


@pytest.fixture
def two_ptys() -> Iterator[tuple[str, str]]:
    fds = [os.openpty() for _ in range(2)]
    try:
        yield os.ttyname(fds[0][1]), os.ttyname(fds[1][1])
    finally:
        for controller_fd, device_fd in fds:
            os.close(controller_fd)
            os.close(device_fd)


def test_a_bench_profile_may_name_pseudo_terminals(
    tmp_path: Path, two_ptys: tuple[str, str]
) -> None:
    pump_pty, board_pty = two_ptys
    profile = tmp_path / "bench.toml"
    profile.write_text(
        f'rig_id = "bench-pty"\n'
        f'[devices.pump]\nport = {{ path = "{pump_pty}" }}\n'
        f'[devices.board]\nport = {{ path = "{board_pty}" }}\n'
    )
    bench = _resolve_bench(profile)
    assert (bench.pump_port, bench.board_port) == (pump_pty, board_pty)


def test_rig_sim_takes_a_real_device_from_a_profile_or_from_its_option(
    two_ptys: tuple[str, str],
) -> None:
    """A profile whose pump is a path and whose board is `{ sim = "board" }` is a hybrid bench;
    so is the simulator profile with --pump-port."""
    pump_pty, board_pty = two_ptys
    sim_profile = load_profile(DEFAULT_PROFILE)
    hybrid = sim_profile.model_copy(
        update={
            "devices": sim_profile.devices.model_copy(
                update={
                    "pump": sim_profile.devices.pump.model_copy(
                        update={"port": PathPort(path=pump_pty)}
                    )
                }
            )
        }
    )
    no_options = argparse.Namespace(
        pump_port=None, board_port=None, pedal_port=None, basket_port=None
    )
    assert _real_ports(no_options, hybrid) == {"pump": pump_pty}
    assert _real_ports(no_options, sim_profile) == {}
    board_option = argparse.Namespace(
        pump_port=None, board_port=board_pty, pedal_port=None, basket_port=None
    )
    assert _real_ports(board_option, sim_profile) == {"board": board_pty}
    with pytest.raises(PortResolutionError, match="--pump-port /dev/ttyUSB9: "):
        _real_ports(
            argparse.Namespace(
                pump_port="/dev/ttyUSB9", board_port=None, pedal_port=None, basket_port=None
            ),
            sim_profile,
        )
