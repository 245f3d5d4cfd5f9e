"""The simulator's control topic, over a real Mosquitto.

The simulator tells its launcher it is ready through `on_serving`; a request published the moment
that happens must be answered. (It once signalled before connecting to the broker, and a test's
first control request under CI load went to nobody.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from drivers.sim.rig_sim import RigSimulator, SimSettings, serve_forever, sim_command_topic
from drivers.transport.mqtt import MqttEndpoint
from rig.broker import PrivateBroker


class _SimulatorThread:
    """The simulator on its own event loop, so that it can be held inside `on_serving` while
    the test publishes: whether the request is delivered then depends only on the order of
    subscribing and signalling, not on how the two tasks happen to be scheduled."""

    def __init__(self, settings: SimSettings, host: str, port: int) -> None:
        self.serving = threading.Event()
        self.release = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(settings, host, port),))

    def _on_serving(self) -> None:
        self.serving.set()
        self.release.wait(10.0)

    async def _run(self, settings: SimSettings, host: str, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):
            async with RigSimulator(settings) as sim:
                await serve_forever(sim, host, port, "t", on_serving=self._on_serving)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10.0)


async def test_a_request_published_when_the_simulator_says_it_serves_is_answered(
    tmp_path: Path,
) -> None:
    broker = PrivateBroker(tmp_path / "broker")
    async with broker, MqttEndpoint(broker.host, broker.port) as client:
        simulator = _SimulatorThread(
            SimSettings(link_dir=tmp_path / "dev"), broker.host, broker.port
        )
        simulator.start()
        try:
            assert await asyncio.to_thread(simulator.serving.wait, 10.0)
            request = asyncio.create_task(
                client.request(sim_command_topic("t"), {"op": "state"}, timeout_s=3.0)
            )
            # The broker has the request once it acknowledges the publish; give it that
            # long before letting the simulator read, with its loop still held.
            await asyncio.sleep(0.3)
            simulator.release.set()
            reply = await request
            assert reply["ok"] and "pump" in reply["result"]
        finally:
            await asyncio.to_thread(simulator.stop)
