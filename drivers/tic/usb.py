"""The Tic over USB: each request is one vendor control transfer on endpoint 0 (codec `encode_usb`)."""

from __future__ import annotations

from collections.abc import Callable

from drivers.clock import REAL_CLOCK, Clock
from drivers.tic.codec import (
    TIC_VENDOR_ID,
    USB_MAX_READ,
    USB_TIMEOUT_MS,
    BlockRead,
    Command,
    Request,
    TicProduct,
    TicProtocolError,
    encode_usb,
)
from drivers.transport.linkstats import LinkStats
from drivers.transport.usb import UsbDeviceMatch, UsbLink


class TicUsbTransport:
    max_read_length = USB_MAX_READ
    writes_settings = True

    def __init__(
        self,
        *,
        serial_number: str | None = None,
        products: tuple[TicProduct, ...] = tuple(TicProduct),
        backend: object | None = None,
        timeout_ms: int = USB_TIMEOUT_MS,
        stats: LinkStats | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.link = UsbLink(
            UsbDeviceMatch(TIC_VENDOR_ID, tuple(int(p) for p in products), serial_number),
            backend=backend,
            stats=stats,
            clock=clock,
        )
        self.stats = self.link.stats

    @property
    def is_open(self) -> bool:
        return self.link.is_open

    def describe(self) -> str:
        return self.link.match.describe()

    async def open(self) -> None:
        await self.link.open()

    async def close(self) -> None:
        await self.link.close()

    async def wait_closed(self) -> None:
        await self.link.wait_closed()

    async def exchange(self, request: Request) -> bytes:
        transfer = encode_usb(request)
        reply = await self.link.control(
            transfer.bm_request_type,
            transfer.b_request,
            transfer.w_value,
            transfer.w_index,
            transfer.data_or_length,
            self.timeout_ms,
        )
        if isinstance(request, BlockRead) and len(reply) != request.length:
            raise TicProtocolError(
                f"{request.command.name} at {request.offset:#04x}: {len(reply)} bytes, "
                f"expected {request.length}",
                reply,
            )
        return reply

    def send_nowait(self, command: Command, on_failure: Callable[[BaseException], None]) -> None:
        transfer = encode_usb(command)
        self.link.control_nowait(
            transfer.bm_request_type,
            transfer.b_request,
            transfer.w_value,
            transfer.w_index,
            self.timeout_ms,
            on_failure,
        )
