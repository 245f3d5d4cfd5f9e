"""The simulator's USB bus served on a Unix socket, for a host in another process.

The daemon reaches the emulated USB devices through `drivers/transport/usb_remote.py`, which
forwards each pyusb backend call here as one JSON line; this server makes the call on the
simulated bus (`SimUsbBackend`) in a worker thread (an interrupt read blocks until a report or
its timeout) and answers with one line. Devices and handles are named by integers chosen here.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import usb.core

from drivers.sim.usb.backend import (
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_NOT_FOUND,
    SimUsbBackend,
)
from drivers.transport.usb_remote import (
    CONFIGURATION_FIELDS,
    DEVICE_FIELDS,
    ENDPOINT_FIELDS,
    INTERFACE_FIELDS,
    MAX_LINE_BYTES,
    descriptor_to_wire,
)

log = logging.getLogger(__name__)


class _BadRequestError(Exception):
    pass


class UsbBusServer:
    def __init__(self, bus: SimUsbBackend, socket_path: Path) -> None:
        self.bus = bus
        self.socket_path = socket_path
        self._server: asyncio.Server | None = None
        self._objects: dict[int, Any] = {}
        self._ids: dict[int, int] = {}  # id(object) -> wire id, so a device keeps its number
        self._next_id = 1
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._ops: dict[str, Callable[..., Any]] = {
            "enumerate_devices": lambda: [self._name(d) for d in bus.enumerate_devices()],
            "get_device_descriptor": lambda d: descriptor_to_wire(
                bus.get_device_descriptor(self._get(d)), DEVICE_FIELDS
            ),
            "get_configuration_descriptor": lambda d, c: descriptor_to_wire(
                bus.get_configuration_descriptor(self._get(d), c), CONFIGURATION_FIELDS
            ),
            "get_interface_descriptor": lambda d, i, a, c: descriptor_to_wire(
                bus.get_interface_descriptor(self._get(d), i, a, c), INTERFACE_FIELDS
            ),
            "get_endpoint_descriptor": lambda d, e, i, a, c: descriptor_to_wire(
                bus.get_endpoint_descriptor(self._get(d), e, i, a, c), ENDPOINT_FIELDS
            ),
            "open_device": lambda d: self._name(bus.open_device(self._get(d))),
            "close_device": lambda h: bus.close_device(self._get(h)),
            "set_configuration": lambda h, v: bus.set_configuration(self._get(h), v),
            "get_configuration": lambda h: bus.get_configuration(self._get(h)),
            "set_interface_altsetting": lambda h, i, a: bus.set_interface_altsetting(
                self._get(h), i, a
            ),
            "claim_interface": lambda h, i: bus.claim_interface(self._get(h), i),
            "release_interface": lambda h, i: bus.release_interface(self._get(h), i),
            "is_kernel_driver_active": lambda h, i: bus.is_kernel_driver_active(self._get(h), i),
            "detach_kernel_driver": lambda h, i: bus.detach_kernel_driver(self._get(h), i),
            "attach_kernel_driver": lambda h, i: bus.attach_kernel_driver(self._get(h), i),
            "clear_halt": lambda h, e: bus.clear_halt(self._get(h), e),
            "reset_device": lambda h: bus.reset_device(self._get(h)),
            "ctrl_in": self._ctrl_in,
            "ctrl_out": self._ctrl_out,
            "intr_read": self._intr_read,
        }

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.socket_path), limit=MAX_LINE_BYTES
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            # each handler ends at its connection's end (after a transfer in flight, within
            # that transfer's timeout)
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while line := await reader.readline():
                reply = await asyncio.to_thread(self.handle_line, line)
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.warning("USB bus client dropped: %s", exc)
        finally:
            self._writers.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)
            writer.close()

    def handle_line(self, line: bytes) -> bytes:
        """One request line in, one reply line out; never raises."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise _BadRequestError(f"not a request: {line[:80]!r}")
            name, args = request.get("op"), request.get("args")
            op = self._ops.get(name) if isinstance(name, str) else None
            if op is None or not isinstance(args, list):
                raise _BadRequestError(f"not a request: {line[:80]!r}")
            reply: dict[str, Any] = {"ok": op(*args)}
        except usb.core.USBError as exc:
            reply = {"error": _error(exc)}
        except (_BadRequestError, TypeError, ValueError, KeyError) as exc:
            reply = {
                "error": {
                    "message": str(exc),
                    "code": LIBUSB_ERROR_INVALID_PARAM,
                    "errno": None,
                    "timeout": False,
                }
            }
        except IndexError as exc:
            reply = {
                "error": {
                    "message": str(exc),
                    "code": LIBUSB_ERROR_NOT_FOUND,
                    "errno": None,
                    "timeout": False,
                }
            }
        return json.dumps(reply).encode() + b"\n"

    def _name(self, obj: Any) -> int:
        key = id(obj)
        if key not in self._ids or self._objects.get(self._ids[key]) is not obj:
            self._ids[key] = self._next_id
            self._objects[self._next_id] = obj
            self._next_id += 1
        return self._ids[key]

    def _get(self, wire_id: int) -> Any:
        try:
            return self._objects[wire_id]
        except KeyError:
            raise _BadRequestError(f"no device or handle {wire_id}") from None

    def _ctrl_in(self, h: int, bm: int, b: int, wv: int, wi: int, length: int, timeout: int) -> str:
        buffer = array.array("B", bytes(length))
        n = self.bus.ctrl_transfer(self._get(h), bm, b, wv, wi, buffer, timeout)
        return buffer[:n].tobytes().hex()

    def _ctrl_out(self, h: int, bm: int, b: int, wv: int, wi: int, data: str, timeout: int) -> int:
        payload = array.array("B", bytes.fromhex(data))
        return self.bus.ctrl_transfer(self._get(h), bm, b, wv, wi, payload, timeout)

    def _intr_read(self, h: int, ep: int, intf: int, size: int, timeout: int) -> str:
        buffer = array.array("B", bytes(size))
        n = self.bus.intr_read(self._get(h), ep, intf, buffer, timeout)
        return buffer[:n].tobytes().hex()


def _error(exc: usb.core.USBError) -> dict[str, Any]:
    return {
        "message": exc.strerror,
        "code": exc.backend_error_code,
        "errno": exc.errno,
        "timeout": isinstance(exc, usb.core.USBTimeoutError),
    }
