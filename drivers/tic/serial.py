"""The Tic over TTL serial: compact or Pololu protocol packets (codec `encode_serial`).

Only block reads are answered; their bytes are matched to the read by count (the Tic frames
nothing), so bytes left over from a read that timed out are dropped before the next request.
Settings cannot be written over serial (set setting is USB only): `writes_settings` is False.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drivers.clock import REAL_CLOCK, Clock
from drivers.tic.codec import (
    SERIAL_MAX_READ,
    BlockRead,
    Command,
    Request,
    SetSetting,
    encode_serial,
)
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import SerialLink

DEFAULT_BAUDRATE = 9600


class TicSerialTimeoutError(TimeoutError):
    pass


class TicSerialTransport:
    max_read_length = SERIAL_MAX_READ
    writes_settings = False

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        device_number: int | None = None,
        crc: bool = False,
        reply_timeout_s: float = 0.1,
        stats: LinkStats | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.device_number = device_number
        self.crc = crc
        self.reply_timeout_s = reply_timeout_s
        self.link = SerialLink(url, baudrate, self._on_data, stats=stats, clock=clock)
        self.stats = self.link.stats
        self._rx = bytearray()
        self._rx_event = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self.link.is_open

    def describe(self) -> str:
        return f"Tic on {self.link.url}"

    async def open(self) -> None:
        await self.link.open()
        self._rx.clear()

    async def close(self) -> None:
        await self.link.close()

    async def wait_closed(self) -> None:
        await self.link.wait_closed()

    async def exchange(self, request: Request) -> bytes:
        if isinstance(request, SetSetting):
            raise ValueError("set setting is a USB-only command; configure the Tic over USB")
        if self._rx:
            self.stats.invalid_bytes += len(self._rx)  # a late reply to a read that timed out
            self._rx.clear()
        self.link.write(encode_serial(request, device_number=self.device_number, crc=self.crc))
        self.stats.frames_tx += 1
        if not isinstance(request, BlockRead):
            return b""
        try:
            async with asyncio.timeout(self.reply_timeout_s):
                while len(self._rx) < request.length:
                    self._rx_event.clear()
                    await self._rx_event.wait()
        except TimeoutError:
            self.stats.timeouts += 1
            raise TicSerialTimeoutError(
                f"{self.describe()}: {len(self._rx)} of {request.length} bytes of "
                f"{request.command.name} at {request.offset:#04x} in {self.reply_timeout_s} s"
            ) from None
        reply = bytes(self._rx[: request.length])
        del self._rx[: request.length]
        self.stats.frames_rx += 1
        return reply

    def send_nowait(self, command: Command, on_failure: Callable[[BaseException], None]) -> None:
        """Queue the command's bytes at once (the serial link's write never blocks)."""
        self.link.write(encode_serial(command, device_number=self.device_number, crc=self.crc))
        self.stats.frames_tx += 1

    def _on_data(self, data: bytes, _rx_time_s: float) -> None:
        self._rx += data
        self._rx_event.set()
