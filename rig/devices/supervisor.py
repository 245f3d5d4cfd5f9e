"""One supervisor for every device: connect, configure, watch the link, report, reconnect.

A loss is reported to the interlock (its facts follow the links), to the device (which latches a
fault if fluid moved) and on the events topic; the supervisor then reconnects with back-off.
What is device-specific lives in the device's hooks (rig/devices/contract.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from drivers.transport.backoff import Backoff
from rig.devices.contract import Device
from rig.events.models import DeviceLinkChanged

log = logging.getLogger(__name__)


async def supervise(device: Device) -> None:
    context = device.context
    backoff = Backoff()
    while True:
        try:
            await device.link.connect()
            await device.configure()
        except device.connect_errors as exc:
            log.warning("%s not available (%s)", device.name, exc)
            with contextlib.suppress(Exception):
                await device.link.close()
            await asyncio.sleep(backoff.next_delay_s())
            continue
        backoff.reset()
        device.connections += 1
        _report(device, up=True)
        await device.on_up()
        context.state_changed()
        await device.link.wait_closed()
        _report(device, up=False)
        context.state_changed()
        device.on_lost()


def _report(device: Device, *, up: bool) -> None:
    device.context.interlock.set_links(**{device.name: up})
    device.context.record(
        DeviceLinkChanged(
            device=device.name,
            up=up,
            detail=f"{device.link.url}, connection {device.connections}",
        )
    )
