"""The simulator's serial cable (drivers/sim/pty.py): unplugged, its path is gone, as udev removes
a USB serial port's link."""

from __future__ import annotations

import os
from pathlib import Path

from drivers.sim.pty import PtyPort


def _leads_to(path: Path) -> str | None:
    """Where the device's path leads, or None with no path."""
    return os.path.realpath(path) if os.path.lexists(path) else None


async def test_an_unplugged_port_has_no_path_to_a_pseudo_terminal_someone_else_gets(
    tmp_path: Path,
) -> None:
    port = PtyPort("pump", 19200, lambda data, at_s: None, link_dir=tmp_path)
    await port.start()
    try:
        assert (_leads_to(port.path) or "").startswith("/dev/pts/")
        port.unplug()
        assert _leads_to(port.path) is None
        # The freed number goes to the next pseudo-terminal opened on this machine (another
        # simulator's device, in a parallel test run): the old path must not lead there.
        other_master, other_slave = os.openpty()
        try:
            assert _leads_to(port.path) is None
            port.plug()
            now = _leads_to(port.path) or ""
            assert now.startswith("/dev/pts/") and now != os.ttyname(other_slave)
        finally:
            os.close(other_master)
            os.close(other_slave)
    finally:
        await port.stop()
    assert _leads_to(port.path) is None
