"""A burst of events reaches the API whole (issue 7, item 3).

Before the journal, the daemon held unpublished events in a queue of 1000 that dropped the
oldest when full: a burst of denials (a stuck pedal, a hostile client) erased the start of the
story. Now the publisher reads the journal by cursor and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from drivers.transport.mqtt import MqttEndpoint
from rig.safety.interlock import InterlockDeniedError
from rig.safety.rules import Action
from tests.system.inprocess import inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

BURST_EVENTS = 1500
"""More than the old queue held (1000)."""


async def test_a_burst_of_events_larger_than_the_old_queue_is_published_whole(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        broker = rig.broker
        async with MqttEndpoint(broker.host, broker.port) as listener:
            events = await listener.subscribe(rig.daemon.api.topics.events)
            # In one turn of the event loop, as a flood of refused requests would come: the line
            # is not primed, so each irrigation is denied and recorded.
            for _ in range(BURST_EVENTS):
                with contextlib.suppress(InterlockDeniedError):
                    rig.daemon.interlock.require(Action.IRRIGATE)
            denials = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30.0):
                    while denials < BURST_EVENTS:
                        event = json.loads((await events.get()).payload)
                        if event["kind"] == "command_denied" and event["op"] == "fluid.irrigate":
                            denials += 1
            assert denials == BURST_EVENTS, f"{BURST_EVENTS - denials} denials never published"
