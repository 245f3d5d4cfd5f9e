"""Nothing but the interlock moves or configures an actuator: checked on the source, not hoped.

Every call in the rig (the daemon, the API, the self-test, the fluid controller, the clients)
that names one of the drivers' actuator methods is a finding, unless it is in the interlock
(which checks each against its rule table) or in a module that implements those methods rather
than calls them. The daemon holds the devices only through rig/safety/links.py, whose handles
have none of them; the check below also proves it holds no driver at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from drivers.ioboard import IoBoard
from drivers.ne1000 import Ne1000Pump
from drivers.tic.driver import TicStepper
from rig.config import DEFAULT_PROFILE, load_profile
from rig.daemon import BrokerAddress, RigDaemon
from tests.support.ports import unused_ports

RIG = Path(__file__).resolve().parents[1] / "rig"

ACTUATOR_METHODS = frozenset(
    {
        # the pump (drivers/ne1000/driver.py)
        "set_rate",
        "set_direction",
        "set_volume_ul",
        "clear_dispensed",
        "set_diameter",
        "stop_nowait",
        "stop_from_thread",
        # the I/O board (drivers/ioboard/driver.py)
        "set_pump_relay",
        "open_pump_relay_nowait",
        "reset_trip",
        "configure_watchdog",
        "set_cutoff",
        "zero_pressure",
        "set_flow_nowait",
        "set_light",
        # the basket's Tic (drivers/tic/driver.py)
        "set_target_position",
        "set_target_velocity",
        "set_max_speed",
        "set_max_accel",
        "set_max_decel",
        "set_current_limit_code",
        "exit_safe_start",
        "energize",
        "go_home",
        "halt_and_hold",
        "halt_and_hold_nowait",
        "halt_and_set_position",
        "configure_command_timeout",
    }
)
"""Each driver method that moves an actuator, switches its power or changes its configuration.
(`run` and `stop` are checked by the interlock's tests: their names are everyone's.)"""

ALLOWED = {
    RIG / "safety" / "interlock.py": "the one place that calls them, each behind a rule",
    RIG / "bench" / "stepped_rig.py": "implements them for the in-memory bench wires",
}


def _named_actuators(tree: ast.AST) -> list[tuple[int, str]]:
    """Every use of an actuator method's name, called or passed on (`emergency_stop=x.stop_nowait`),
    except through the interlock."""
    return [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ACTUATOR_METHODS
        and not isinstance(node.ctx, ast.Store)
        and not _through_the_interlock(node.value)
    ]


def _through_the_interlock(receiver: ast.expr) -> bool:
    """`interlock.x`, `self.interlock.x`, `self._interlock.x`."""
    name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
    return name in ("interlock", "_interlock")


@pytest.mark.hazard("H03")
def test_no_module_but_the_interlock_names_an_actuator_method() -> None:
    found = []
    for path in sorted(RIG.rglob("*.py")):
        if path in ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [
            f"{path.relative_to(RIG.parent)}:{n}: {name}" for n, name in _named_actuators(tree)
        ]
    assert found == []


def test_the_check_finds_a_direct_call_and_a_method_passed_on() -> None:
    """The check can fail: a daemon that called the board itself, or handed the pump's stop to
    a thread, would be found; the same through the interlock would not."""
    source = (
        "async def f(self):\n"
        "    await self.board.set_cutoff(80)\n"
        "    guard = Guard(emergency_stop=self.pump.stop_from_thread)\n"
        "    await self.interlock.rearm_board()\n"
        "    self._interlock.stop_from_thread()\n"
    )
    assert _named_actuators(ast.parse(source)) == [(2, "set_cutoff"), (3, "stop_from_thread")]


def test_the_daemon_holds_no_driver_only_the_interlock_and_link_handles() -> None:
    profile = load_profile(DEFAULT_PROFILE)
    daemon = RigDaemon(profile, unused_ports(profile), BrokerAddress("127.0.0.1", 1))
    holders = [daemon, *daemon.devices]
    held = [
        (type(holder).__name__, name)
        for holder in holders
        for name, value in vars(holder).items()
        if isinstance(value, Ne1000Pump | IoBoard | TicStepper)
    ]
    assert held == []
    pump, board = daemon.devices["pump"].link, daemon.devices["board"].link
    assert not hasattr(pump, "set_rate") and not hasattr(board, "set_cutoff")
    assert not hasattr(daemon.devices["basket"].link, "set_target_position")
