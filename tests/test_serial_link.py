"""The serial link's own statistics, over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import tty

from drivers.transport.serial import CLOSE_TIMEOUT_S, SerialLink


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


async def test_close_is_bounded_when_the_peer_never_reads() -> None:
    """A device that stopped reading leaves bytes unsent: a graceful close would wait for them
    forever (and a reset or shutdown with it). The link drops them after CLOSE_TIMEOUT_S."""
    controller_fd, device_fd = os.openpty()
    tty.setraw(device_fd)
    path = os.ttyname(device_fd)
    lost: list[Exception | None] = []
    try:
        link = SerialLink(path, 19200, lambda data, t_s: None, on_lost=lost.append)
        await link.open()
        link.write(b"x" * 1_000_000)  # far beyond what the pseudo-terminal buffers
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        started_s = loop.time()
        await link.close()
        assert loop.time() - started_s < 3 * CLOSE_TIMEOUT_S
        assert not link.is_open and not link.stats.connected
        assert len(lost) == 1
        await asyncio.sleep(0.2)
        assert len(lost) == 1  # the dropped port's late end is not a second loss
        await link.open()  # and the port can be opened again
        assert link.is_open
        await link.close()
    finally:
        os.close(controller_fd)
        os.close(device_fd)
