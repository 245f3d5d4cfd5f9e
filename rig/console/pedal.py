"""The foot pedal plugged into the console: read here, forwarded to the rig (`pedal.report`).

With `devices.pedal.port = { console = "surgeon" }` the daemon does not read the pedal itself:
the surgeon's console does, and sends the pressed pedals at every change and as a heartbeat
(a third of `devices.pedal.forward_timeout_ms`), each with a rising sequence number. The daemon
runs its own tracker on what arrives and counts a stream silent for forward_timeout_ms as
released (rig/devices/pedal.py), so a console that hangs or loses its network stops the saline.
A pedal unplugged here is released at once (the driver's tracker reports it), then looked for
again with back-off.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from drivers.pedal.driver import FootPedal
from drivers.pedal.tracker import PedalEvent
from drivers.transport.backoff import Backoff
from drivers.transport.mqtt import JsonObject
from drivers.transport.serial import LinkClosedError

log = logging.getLogger(__name__)

HEARTBEATS_PER_TIMEOUT = 3


class PedalForwarder:
    def __init__(
        self,
        pedal: FootPedal,
        send: Callable[[JsonObject], Awaitable[JsonObject]],
        forward_timeout_s: float,
    ) -> None:
        self._pedal = pedal
        self._send = send
        self._heartbeat_s = forward_timeout_s / HEARTBEATS_PER_TIMEOUT
        self._seq = itertools.count(1)
        self._changed = asyncio.Event()
        self.reports = 0
        self._last_error: object = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read())
            tasks.create_task(self._report())

    async def _read(self) -> None:
        backoff = Backoff(initial_s=0.2, maximum_s=2.0)
        while True:
            try:
                await self._pedal.connect()
            except (LinkClosedError, OSError) as exc:
                log.info("pedal not available: %s", exc)
                await asyncio.sleep(backoff.next_delay_s())
                continue
            backoff.reset()
            log.info("pedal connected: %s", self._pedal.url)
            try:
                await self._pedal.run(self._on_event)
            except (LinkClosedError, OSError) as exc:
                log.warning("pedal lost: %s", exc)
            finally:
                self._changed.set()  # released by the tracker: say so now
                await self._pedal.close()

    def _on_event(self, event: PedalEvent) -> None:
        self._changed.set()

    async def _report(self) -> None:
        """Every change at once, and the current state at least every heartbeat."""
        while True:
            try:
                async with asyncio.timeout(self._heartbeat_s):
                    await self._changed.wait()
            except TimeoutError:
                pass
            self._changed.clear()
            pressed = sorted(pedal.value for pedal in self._pedal.pressed)
            reply = await self._send(
                {"op": "pedal.report", "pressed": pressed, "seq": next(self._seq)}
            )
            self.reports += 1
            error = None if reply.get("ok") else reply.get("error")
            if error != self._last_error:  # once per change, not at every heartbeat
                self._last_error = error
                if error is not None:
                    log.warning("pedal reports refused: %s", error)
