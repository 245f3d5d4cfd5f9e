"""The simulated USB bus reached from "another process": the remote backend over a Unix socket.

Host and server share one event loop here; the host's pyusb calls run in worker threads, as the
drivers make them, so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import usb.core

from drivers.pedal.driver import FootPedal
from drivers.pedal.reports import Pedal, PedalFormat
from drivers.pedal.tracker import PedalEvent, PedalPressed, PedalTiming
from drivers.sim.tic_device import TicModel
from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.pedals import SimVecPedal
from drivers.sim.usb.server import UsbBusServer
from drivers.sim.usb.tic import SimTicUsb
from drivers.tic.codec import TicErrors
from drivers.tic.driver import TicStepper
from drivers.tic.usb import TicUsbTransport
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb_remote import RemoteUsbBackend


@dataclass
class Remote:
    bus: SimUsbBackend
    tic: SimTicUsb
    pedal: SimVecPedal
    server: UsbBusServer
    backend: RemoteUsbBackend


@pytest.fixture
async def remote(tmp_path: Path) -> AsyncIterator[Remote]:
    bus = SimUsbBackend()
    tic, pedal = SimTicUsb(TicModel()), SimVecPedal()
    bus.attach(tic)
    bus.attach(pedal)
    server = UsbBusServer(bus, tmp_path / "usb.sock")
    await server.start()
    yield Remote(bus, tic, pedal, server, RemoteUsbBackend(tmp_path / "usb.sock"))
    await server.stop()


async def test_the_tic_driver_runs_unchanged_over_the_remote_bus(remote: Remote) -> None:
    tic = TicStepper(TicUsbTransport(backend=remote.backend))
    status = await tic.connect()
    assert status.errors == TicErrors.SAFE_START_VIOLATION
    assert tic.transport.describe().startswith("USB 1ffb")
    await tic.exit_safe_start()
    await tic.halt_and_set_position(42)
    assert (await tic.status()).position_usteps == 42
    await tic.close()


async def test_the_pedal_driver_gets_its_reports_over_the_remote_bus(remote: Remote) -> None:
    pedal = FootPedal(PedalFormat.VEC, backend=remote.backend, timing=PedalTiming(0.01))
    await pedal.connect()
    pressed = asyncio.Event()

    def on_event(event: PedalEvent) -> None:
        if isinstance(event, PedalPressed):
            pressed.set()

    task = asyncio.create_task(pedal.run(on_event))
    remote.pedal.press(Pedal.LEFT)
    async with asyncio.timeout(1.0):
        await pressed.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pedal.close()


async def test_an_unplug_reaches_the_remote_host_as_enodev(remote: Remote) -> None:
    tic = TicStepper(TicUsbTransport(backend=remote.backend))
    await tic.connect()
    remote.bus.unplug(remote.tic)
    with pytest.raises(LinkClosedError) as caught:
        await tic.status()
    cause = caught.value.__cause__
    assert isinstance(cause, usb.core.USBError) and cause.errno == errno.ENODEV
    await tic.close()


async def test_a_malformed_request_gets_an_error_and_the_server_keeps_serving(
    remote: Remote,
) -> None:
    def exchange() -> list[dict[str, object]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream:
            stream.settimeout(2.0)
            stream.connect(str(remote.server.socket_path))
            stream.sendall(b'{"op": "format_disk", "args": []}\nnot json\n')
            stream.sendall(b'{"op": "enumerate_devices", "args": []}\n')
            data = b""
            while data.count(b"\n") < 3:
                data += stream.recv(4096)
        return [json.loads(line) for line in data.splitlines()]

    first, second, third = await asyncio.to_thread(exchange)
    assert "error" in first and "error" in second
    assert third == {"ok": [1, 2]}


async def test_no_server_is_a_clear_error(tmp_path: Path) -> None:
    tic = TicStepper(TicUsbTransport(backend=RemoteUsbBackend(tmp_path / "none.sock")))
    with pytest.raises(LinkClosedError, match=r"none\.sock"):
        await tic.connect()


async def test_a_bus_server_that_goes_away_closes_the_link(remote: Remote) -> None:
    tic = TicStepper(TicUsbTransport(backend=remote.backend))
    await tic.connect()
    await remote.server.stop()
    with pytest.raises(LinkClosedError):
        await tic.status()
    async with asyncio.timeout(1.0):
        await tic.wait_closed()
    await tic.close()
