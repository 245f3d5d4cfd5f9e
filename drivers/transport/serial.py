"""Async serial link on pyserial-asyncio-fast: bytes in through a callback, bytes out at once.

The link is deliberately thin. Received bytes go to a synchronous callback (the driver feeds its
codec there), so a pressure sample can trigger a stop without a single await between the byte
arriving and the stop bytes being queued. `write` never blocks and returns the moment the last
byte will have left the host at the configured baud rate: a pseudo-terminal has no baud rate of
its own, and a real UART's kernel buffer hides it too, so the link keeps its own account of the
wire (8N1: ten bit times per byte).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import cast

import serial
import serial_asyncio_fast

from drivers.clock import REAL_CLOCK, Clock
from drivers.transport.linkstats import LinkStats

log = logging.getLogger(__name__)

BITS_PER_BYTE_8N1 = 10
CLOSE_TIMEOUT_S = 0.5
"""How long a close waits for each step: the graceful close, then the abort."""


class LinkClosedError(ConnectionError):
    """The port is not open (never opened, unplugged, or closed)."""


def wire_time_s(n_bytes: int, baudrate: int) -> float:
    """Time `n_bytes` take on an 8N1 line at `baudrate`."""
    return n_bytes * BITS_PER_BYTE_8N1 / baudrate


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, link: SerialLink) -> None:
        self._link = link
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._link._on_bytes(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._on_lost(exc, self._transport)


class SerialLink:
    """One serial port. Open it, write to it, get its bytes through `on_data`.

    `on_data(data, rx_time_s)` is called from the event loop for every read, with the clock time
    of the read. `on_lost(exc)` is called once when the port goes away (cable pulled, device
    reset); the owner decides whether to reconnect.
    """

    def __init__(
        self,
        url: str,
        baudrate: int,
        on_data: Callable[[bytes, float], None],
        *,
        stats: LinkStats | None = None,
        clock: Clock = REAL_CLOCK,
        on_lost: Callable[[Exception | None], None] | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.stats = stats if stats is not None else LinkStats()
        self._on_data = on_data
        self._on_lost_cb = on_lost
        self._clock = clock
        self._transport: asyncio.Transport | None = None
        self._fd: int | None = None
        self._tx_busy_until_s = 0.0
        self._lost = asyncio.Event()
        self._ever_opened = False

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self, timeout_s: float = 2.0) -> None:
        if self.is_open:
            return
        loop = asyncio.get_running_loop()
        self._lost = asyncio.Event()
        try:
            async with asyncio.timeout(timeout_s):
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop,
                    lambda: _LinkProtocol(self),
                    self.url,
                    baudrate=self.baudrate,
                    bytesize=serial.EIGHTBITS,
                    parity=serial.PARITY_NONE,
                    stopbits=serial.STOPBITS_ONE,
                    exclusive=True,
                )
        except (serial.SerialException, OSError) as exc:
            raise LinkClosedError(f"cannot open {self.url}: {exc}") from exc
        self._transport = transport
        port = cast("serial.Serial", transport.get_extra_info("serial"))
        self._fd = port.fileno()
        self._tx_busy_until_s = 0.0
        self.stats.connected = True
        if self._ever_opened:
            self.stats.reconnects += 1  # every open after the first: a cable replugged, a reset
        self._ever_opened = True
        log.info("opened %s at %d baud", self.url, self.baudrate)

    def write(self, data: bytes) -> float:
        """Queue `data` for the wire now; return the clock time its last byte leaves the host."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise LinkClosedError(f"{self.url} is not open")
        transport.write(data)
        self.stats.bytes_tx += len(data)
        start_s = max(self._clock.monotonic(), self._tx_busy_until_s)
        self._tx_busy_until_s = start_s + wire_time_s(len(data), self.baudrate)
        return self._tx_busy_until_s

    def write_from_thread(self, data: bytes) -> None:
        """Write straight to the port's file descriptor, bypassing the event loop.

        Only for a thread acting while the loop is stalled (rig/safety/stall_guard.py): the
        loop's own writes are not running then, so the bytes cannot interleave with them.
        """
        fd = self._fd
        if fd is None:
            raise LinkClosedError(f"{self.url} is not open")
        os.write(fd, data)
        self.stats.bytes_tx += len(data)

    async def wait_closed(self) -> None:
        """Return when the port has been lost or closed."""
        await self._lost.wait()

    async def close(self) -> None:
        """Close the port; bounded, so that no reset or shutdown waits on a stuck port.

        A graceful close first sends what is still buffered. A peer that stopped reading (a
        device that hung, a pseudo-terminal nobody drains) would keep that waiting forever, so
        after CLOSE_TIMEOUT_S the unsent bytes are dropped (abort). If even that does not end the
        port (its close stuck in a worker thread), the link forgets it and reports it lost.
        """
        transport = self._transport
        if transport is None:
            return
        transport.close()
        if await self._lost_within(CLOSE_TIMEOUT_S):
            return
        unsent = transport.get_write_buffer_size()
        if unsent > 0:
            # Only while bytes are unsent is the graceful close still waiting on the writer;
            # once they are gone its close is under way, and a second one must not start.
            log.warning("closing %s: the peer took no data; dropping %d bytes", self.url, unsent)
            transport.abort()
            if await self._lost_within(CLOSE_TIMEOUT_S):
                return
        log.error("closing %s did not finish; the link forgets the port", self.url)
        self._on_lost(LinkClosedError(f"closing {self.url} did not finish"), transport)

    async def _lost_within(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._lost.wait()
        except TimeoutError:
            return False
        return True

    def _on_bytes(self, data: bytes) -> None:
        self.stats.bytes_rx += len(data)
        self._on_data(data, self._clock.monotonic())

    def _on_lost(self, exc: Exception | None, transport: asyncio.BaseTransport | None) -> None:
        if transport is not self._transport:
            return  # a port the link already forgot (its close never finished) ends late
        self._transport = None
        self._fd = None
        self.stats.connected = False
        self._lost.set()
        if exc is not None:
            log.warning("lost %s: %s", self.url, exc)
        if self._on_lost_cb is not None:
            self._on_lost_cb(exc)
