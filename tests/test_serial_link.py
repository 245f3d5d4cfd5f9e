"""The serial link's own statistics, over a real pseudo-terminal."""

from __future__ import annotations

import os
import tty

from drivers.transport.serial import SerialLink


async def test_reconnects_counts_every_open_after_the_first() -> None:
    controller_fd, device_fd = os.openpty()
    tty.setraw(device_fd)
    path = os.ttyname(device_fd)
    try:
        link = SerialLink(path, 19200, lambda data, t_s: None)
        await link.open()
        assert link.stats.reconnects == 0 and link.stats.connected
        for expected in (1, 2):
            await link.close()
            assert not link.stats.connected
            await link.open()
            assert link.stats.reconnects == expected
        await link.close()
    finally:
        os.close(controller_fd)
        os.close(device_fd)
