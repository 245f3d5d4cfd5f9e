"""The API's broker supervisor ends when the daemon shuts down, whatever the broker does then."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiomqtt import MqttError

from rig.api.service import ApiService


async def test_a_shutdown_that_meets_the_brokers_loss_still_ends_the_supervisor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `rig sim`'s launcher killed outright: the daemon, the simulator and the broker all get
    # SIGTERM at once (rig/children.py), so the daemon's cancellation of the API meets the
    # broker's disconnect. Python 3.11's TaskGroup then raises the child's MqttError and drops
    # the cancellation; the supervisor took it for one more lost connection and reconnected
    # for ever, and the daemon never finished its shutdown.
    shutdown = asyncio.Event()
    service = ApiService(
        profile=cast(Any, SimpleNamespace(rig_id="r")),
        broker=cast(Any, None),
        dispatcher=cast(Any, None),
        sources=cast(Any, SimpleNamespace(record=lambda event: None, stop_fluid=lambda *_: None)),
        journal=cast(Any, SimpleNamespace(opened_at_seq=0)),
        clock=cast(Any, None),
        shutdown=shutdown,
    )
    serving = asyncio.Event()
    broker_gone = asyncio.Event()
    connections = 0

    @contextlib.asynccontextmanager
    async def endpoint() -> AsyncIterator[object]:
        nonlocal connections
        connections += 1
        yield object()

    async def serve(_: object) -> None:
        async def wait_lost() -> None:
            await broker_gone.wait()
            broker_gone.clear()
            raise MqttError("Disconnected during message iteration")

        serving.set()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(wait_lost())

    monkeypatch.setattr(service, "_endpoint", endpoint)
    monkeypatch.setattr(service, "_serve", serve)
    supervisor = asyncio.create_task(service.supervise())
    await serving.wait()
    # The broker lost alone: the supervisor reconnects.
    serving.clear()
    broker_gone.set()
    async with asyncio.timeout(2.0):
        await serving.wait()
    assert connections == 2
    # Lost as the daemon shuts down and cancels it: it ends.
    broker_gone.set()
    shutdown.set()
    supervisor.cancel()
    done, _ = await asyncio.wait([supervisor], timeout=2.0)
    assert supervisor in done, f"still running after {connections} connections"
