"""The retained state follows every change, including one made while the last publish waited
for the broker's acknowledgement (a lost wake-up left `rig status` reading "closing" for up to
a second after the basket had captured)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from drivers.transport.mqtt import MqttEndpoint
from rig.api.service import STATE_REPUBLISH_S, ApiService


class _SlowBroker:
    """Acknowledges each publish after `ack_s`, and keeps what was published."""

    def __init__(self, ack_s: float) -> None:
        self.ack_s = ack_s
        self.published: list[Any] = []
        self.captured = asyncio.Event()

    async def publish(self, topic: str, payload: Any, **_: Any) -> None:
        await asyncio.sleep(self.ack_s)
        self.published.append(payload)
        if payload == {"basket": "captured"}:
            self.captured.set()


async def test_a_change_during_the_acknowledgement_is_published_without_waiting_for_the_period() -> (
    None
):
    state = {"basket": "closing"}
    service = ApiService(
        profile=cast(Any, SimpleNamespace(rig_id="r")),
        broker=cast(Any, None),
        dispatcher=cast(Any, None),
        sources=cast(Any, SimpleNamespace(state=lambda online: dict(state))),
        journal=cast(Any, SimpleNamespace(opened_at_seq=0)),
        clock=cast(Any, None),
        shutdown=asyncio.Event(),
    )
    broker = _SlowBroker(ack_s=0.05)
    publisher = asyncio.create_task(service._publish_state(cast(MqttEndpoint, broker)))
    try:
        await asyncio.sleep(0.01)  # the first publish (closing) waits for its acknowledgement
        state["basket"] = "captured"
        service.state_changed()
        async with asyncio.timeout(STATE_REPUBLISH_S / 2):
            await broker.captured.wait()
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)
