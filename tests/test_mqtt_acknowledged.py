"""The MQTT endpoint's wait for the broker's acknowledgements keeps a cancellation.

On Python 3.11, asyncio.wait_for (which aiomqtt uses for its own bound) returns normally when a
cancellation arrives in the loop step where the awaited future completes: the cancellation is
lost, and a publishing loop runs on after its TaskGroup was cancelled (the system tests' hangs).
The endpoint asks aiomqtt to wait without bound and bounds the wait itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import pytest

from drivers.transport import mqtt
from drivers.transport.mqtt import MqttEndpoint


async def _cancelled_as_it_completes(
    wait: Callable[[asyncio.Future[None]], Awaitable[Any]],
) -> bool:
    """Whether a task waiting with `wait` ends cancelled when its cancellation and the awaited
    future's result arrive together."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waiter() -> None:
        await wait(future)

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # the task now waits
    future.set_result(None)
    task.cancel()
    await asyncio.wait([task])
    return task.cancelled()


async def test_a_cancellation_that_comes_with_the_acknowledgement_is_kept() -> None:
    endpoint = MqttEndpoint("127.0.0.1", 1)  # never connected: only its wait is used
    assert await _cancelled_as_it_completes(endpoint._acknowledged)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps it from 3.12 on")
async def test_the_wait_that_aiomqtt_would_use_loses_it_on_311() -> None:
    # Why the endpoint does not let aiomqtt bound the wait: this is the failure it avoids.
    assert not await _cancelled_as_it_completes(lambda f: asyncio.wait_for(f, timeout=5.0))


async def test_no_acknowledgement_in_time_is_an_mqtt_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt, "ACK_TIMEOUT_S", 0.05)
    endpoint = MqttEndpoint("127.0.0.1", 1)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(aiomqtt.MqttError, match="no acknowledgement from the broker"):
        await endpoint._acknowledged(never)


async def test_a_broker_that_never_answers_the_connection_is_an_mqtt_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The connection's wait is bounded here too, not by aiomqtt's wait_for: a server that
    # accepts the socket and never sends CONNACK.
    monkeypatch.setattr(mqtt, "ACK_TIMEOUT_S", 0.3)
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(aiomqtt.MqttError, match="no answer to the connection"):
            async with MqttEndpoint("127.0.0.1", port):
                pass
        assert accepted, "the client reached the server"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
