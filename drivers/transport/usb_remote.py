"""A pyusb backend that forwards every call to a USB bus in another process, over a Unix socket.

The simulator's USB devices live in the simulator's process (`drivers/sim/usb/backend.py`); the
daemon, another process, may not import the simulator. This backend is the daemon's end of the
cable: each `IBackend` call goes as one JSON line to the simulator's server
(`drivers/sim/usb/server.py`), which makes it on its bus and answers with one line. Errors come
back as the same `usb.core.USBError` (code, errno, message), so drivers cannot tell the bus is
remote. Each calling thread has its own connection (pyusb calls run in worker threads, and an
interrupt read may block while a control transfer goes on another thread).

Wire format, one JSON object per line each way:
request ``{"op": name, "args": [...]}``; reply ``{"ok": value}`` or
``{"error": {"message": str, "code": int, "errno": int | null, "timeout": bool}}``.
Byte strings travel as hex. Devices and handles are integers the server chose.
"""

from __future__ import annotations

import array
import json
import socket
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

DEVICE_FIELDS = (
    "bLength", "bDescriptorType", "bcdUSB", "bDeviceClass", "bDeviceSubClass", "bDeviceProtocol",
    "bMaxPacketSize0", "idVendor", "idProduct", "bcdDevice", "iManufacturer", "iProduct",
    "iSerialNumber", "bNumConfigurations", "bus", "address", "port_number", "speed",
)  # fmt: skip
CONFIGURATION_FIELDS = (
    "bLength", "bDescriptorType", "wTotalLength", "bNumInterfaces", "bConfigurationValue",
    "iConfiguration", "bmAttributes", "bMaxPower",
)  # fmt: skip
INTERFACE_FIELDS = (
    "bLength", "bDescriptorType", "bInterfaceNumber", "bAlternateSetting", "bNumEndpoints",
    "bInterfaceClass", "bInterfaceSubClass", "bInterfaceProtocol", "iInterface",
)  # fmt: skip
ENDPOINT_FIELDS = (
    "bLength", "bDescriptorType", "bEndpointAddress", "bmAttributes", "wMaxPacketSize",
    "bInterval", "bRefresh", "bSynchAddress",
)  # fmt: skip
MAX_LINE_BYTES = 1 << 16
BUS_SOCKET_NAME = "usb.sock"
"""The simulator serves its USB bus on this socket in its link directory, next to the ptys."""


class RemoteUsbError(ConnectionError):
    """The bus's server is unreachable or answered something that is not a reply."""


def descriptor_to_wire(descriptor: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """A descriptor's fields as JSON (the server's side)."""
    out: dict[str, Any] = {name: int(getattr(descriptor, name)) for name in fields}
    extra = getattr(descriptor, "extra_descriptors", b"")
    out["extra_descriptors"] = bytes(extra).hex()
    ports = getattr(descriptor, "port_numbers", None)
    if ports is not None:
        out["port_numbers"] = list(ports)
    return out


def _descriptor_from_wire(wire: dict[str, Any]) -> SimpleNamespace:
    fields = dict(wire)
    fields["extra_descriptors"] = array.array(
        "B", bytes.fromhex(fields.get("extra_descriptors", ""))
    )
    if "port_numbers" in fields:
        fields["port_numbers"] = tuple(fields["port_numbers"])
    return SimpleNamespace(**fields)


class RemoteUsbBackend(usb.backend.IBackend):  # type: ignore[misc]  # pyusb is untyped
    def __init__(self, socket_path: Path, *, connect_timeout_s: float = 2.0) -> None:
        super().__init__()
        self.socket_path = socket_path
        self.connect_timeout_s = connect_timeout_s
        self._local = threading.local()

    # --- the wire -------------------------------------------------------------------------------

    def _call(self, op: str, *args: Any, timeout_ms: int = 0) -> Any:
        stream = self._stream()
        line = json.dumps({"op": op, "args": list(args)}).encode() + b"\n"
        try:
            # the server answers a transfer within the transfer's own timeout
            stream.settimeout(self.connect_timeout_s + timeout_ms / 1000)
            stream.sendall(line)
            reply_line = self._readline(stream)
        except OSError as exc:
            self._drop()
            raise RemoteUsbError(f"USB bus at {self.socket_path}: {exc}") from exc
        try:
            reply = json.loads(reply_line)
        except ValueError as exc:
            self._drop()
            raise RemoteUsbError(f"USB bus at {self.socket_path}: not a reply") from exc
        if "error" in reply:
            error = reply["error"]
            cls = usb.core.USBTimeoutError if error.get("timeout") else usb.core.USBError
            raise cls(error["message"], error.get("code"), error.get("errno"))
        return reply["ok"]

    def _stream(self) -> socket.socket:
        stream: socket.socket | None = getattr(self._local, "stream", None)
        if stream is None:
            stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stream.settimeout(self.connect_timeout_s)
            try:
                stream.connect(str(self.socket_path))
            except OSError as exc:
                stream.close()
                raise RemoteUsbError(f"USB bus at {self.socket_path}: {exc}") from exc
            self._local.stream = stream
            self._local.buffer = b""
        return stream

    def _readline(self, stream: socket.socket) -> bytes:
        buffer: bytes = self._local.buffer
        while b"\n" not in buffer:
            chunk = stream.recv(65536)
            if not chunk:
                raise ConnectionResetError("the bus closed the connection")
            buffer += chunk
            if len(buffer) > MAX_LINE_BYTES:
                raise ConnectionError("reply line too long")
        line, _, self._local.buffer = buffer.partition(b"\n")
        return line

    def _drop(self) -> None:
        stream: socket.socket | None = getattr(self._local, "stream", None)
        if stream is not None:
            stream.close()
        self._local.stream = None

    # --- IBackend -------------------------------------------------------------------------------

    def enumerate_devices(self) -> list[int]:
        devices: list[int] = self._call("enumerate_devices")
        return devices

    def get_parent(self, dev: int) -> None:
        return None

    def get_device_descriptor(self, dev: int) -> SimpleNamespace:
        return _descriptor_from_wire(self._call("get_device_descriptor", dev))

    def get_configuration_descriptor(self, dev: int, config: int) -> SimpleNamespace:
        return _descriptor_from_wire(self._call("get_configuration_descriptor", dev, config))

    def get_interface_descriptor(
        self, dev: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        return _descriptor_from_wire(self._call("get_interface_descriptor", dev, intf, alt, config))

    def get_endpoint_descriptor(
        self, dev: int, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        return _descriptor_from_wire(
            self._call("get_endpoint_descriptor", dev, ep, intf, alt, config)
        )

    def open_device(self, dev: int) -> int:
        handle: int = self._call("open_device", dev)
        return handle

    def close_device(self, dev_handle: int) -> None:
        self._call("close_device", dev_handle)

    def set_configuration(self, dev_handle: int, config_value: int) -> None:
        self._call("set_configuration", dev_handle, config_value)

    def get_configuration(self, dev_handle: int) -> int:
        value: int = self._call("get_configuration", dev_handle)
        return value

    def set_interface_altsetting(self, dev_handle: int, intf: int, altsetting: int) -> None:
        self._call("set_interface_altsetting", dev_handle, intf, altsetting)

    def claim_interface(self, dev_handle: int, intf: int) -> None:
        self._call("claim_interface", dev_handle, intf)

    def release_interface(self, dev_handle: int, intf: int) -> None:
        self._call("release_interface", dev_handle, intf)

    def is_kernel_driver_active(self, dev_handle: int, intf: int) -> bool:
        return bool(self._call("is_kernel_driver_active", dev_handle, intf))

    def detach_kernel_driver(self, dev_handle: int, intf: int) -> None:
        self._call("detach_kernel_driver", dev_handle, intf)

    def attach_kernel_driver(self, dev_handle: int, intf: int) -> None:
        self._call("attach_kernel_driver", dev_handle, intf)

    def clear_halt(self, dev_handle: int, ep: int) -> None:
        self._call("clear_halt", dev_handle, ep)

    def reset_device(self, dev_handle: int) -> None:
        self._call("reset_device", dev_handle)

    def ctrl_transfer(
        self,
        dev_handle: int,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        if bmRequestType & 0x80:
            length = len(data) * data.itemsize
            reply = bytes.fromhex(
                self._call(
                    "ctrl_in", dev_handle, bmRequestType, bRequest, wValue, wIndex, length,
                    timeout, timeout_ms=timeout,
                )
            )  # fmt: skip
            data[: len(reply)] = array.array("B", reply)
            return len(reply)
        sent: int = self._call(
            "ctrl_out", dev_handle, bmRequestType, bRequest, wValue, wIndex, data.tobytes().hex(),
            timeout, timeout_ms=timeout,
        )  # fmt: skip
        return sent

    def intr_read(
        self, dev_handle: int, ep: int, intf: int, buff: array.array[int], timeout: int
    ) -> int:
        size = len(buff) * buff.itemsize
        reply = bytes.fromhex(
            self._call("intr_read", dev_handle, ep, intf, size, timeout, timeout_ms=timeout)
        )
        buff[: len(reply)] = array.array("B", reply)
        return len(reply)
