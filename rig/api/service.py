"""The MQTT API as a subsystem of the daemon: serve commands, publish state, telemetry, events.

The API is supervised like a device, not the context of the others: the fluid loop and the
devices run on while the broker is away. Losing the broker while fluid moves is a latched
`api_lost` stop (nobody could see or stop the fluid); the API then reconnects with back-off, and
the events journaled meanwhile are published once the broker is back: the story is told whole.
Events are published from the journal (rig/events/journal.py), never ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiomqtt import MqttError

from drivers.clock import Clock
from drivers.transport.backoff import Backoff
from drivers.transport.mqtt import (
    JsonObject,
    MqttEndpoint,
    Request,
    RequestRefusedError,
    bounded,
)
from rig.api.dispatch import CommandDispatcher
from rig.api.roles import Role
from rig.api.topics import RigTopics
from rig.config import RigProfile
from rig.events.journal import Journal
from rig.events.models import ApiLost, ApiRestored, EventBase, RequestRefused
from rig.fluid.events import StopCause

log = logging.getLogger(__name__)

CLEAN_DISCONNECT_TIMEOUT_S = 0.5
STATE_REPUBLISH_S = 1.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


@dataclass
class ApiSources:
    """What the API publishes, and what it does when the broker is lost."""

    state: Callable[[bool], JsonObject]
    """The rig's state (argument: online), retained on the state topic."""
    telemetry: Callable[[], JsonObject]
    record: Callable[[EventBase], object]
    """Record an event (into the journal, which this service publishes from)."""
    stop_fluid: Callable[[StopCause, str], None]


class ApiService:
    def __init__(
        self,
        profile: RigProfile,
        broker: BrokerAddress,
        dispatcher: CommandDispatcher,
        sources: ApiSources,
        journal: Journal,
        clock: Clock,
        shutdown: asyncio.Event,
    ) -> None:
        self._profile = profile
        self.topics = RigTopics(profile.rig_id)
        self._broker = broker
        self._dispatcher = dispatcher
        self._sources = sources
        self._clock = clock
        self._shutdown = shutdown
        self._journal = journal
        self._published_seq = journal.opened_at_seq
        self._state_changed = asyncio.Event()
        self._connected = False
        self._lost_at_s: float | None = None

    def state_changed(self) -> None:
        self._state_changed.set()

    async def supervise(self) -> None:
        """Connect to the broker and serve the API; on losing it, stop the fluid and reconnect."""
        backoff = Backoff(initial_s=0.1, maximum_s=2.0)
        while True:
            reason = ""
            try:
                async with self._endpoint() as mqtt:
                    backoff.reset()
                    await self._serve(mqtt)
            except* MqttError as group:
                reason = _first_cause(group)
            except* Exception as group:
                # A bug in the API's tasks: a fault of this subsystem, handled the same way.
                log.error("API failed", exc_info=group)
                reason = _first_cause(group)
            if self._shutdown.is_set():
                # The daemon cancelled this as the connection failed (all of `rig sim` told to
                # stop at once): Python 3.11's TaskGroup then raises the failure and drops the
                # cancellation, and reconnecting would keep the shutdown waiting for ever.
                # (Task.cancelling() cannot tell: 3.11's TaskGroup leaves it raised after a
                # plain failure too.)
                return
            if self._lost_at_s is None and self._connected:
                self._on_lost(reason)
            self._connected = False
            log.warning("broker connection: %s; retrying", reason)
            await asyncio.sleep(backoff.next_delay_s())

    def _endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(
            self._broker.host,
            self._broker.port,
            name=f"rigd-{self._profile.rig_id}",
            will_topic=self.topics.state,
            will_payload={"online": False, "rig_id": self._profile.rig_id},
            username=self._broker.username,
            password=self._broker.password,
            tls_ca_file=self._profile.broker.tls_ca_file,
        )

    async def _serve(self, mqtt: MqttEndpoint) -> None:
        for role in Role:
            await mqtt.serve(
                self.topics.commands_for(role),
                functools.partial(self._handle, role=role),
                on_refused=functools.partial(self._on_request_refused, role=role),
            )
        self._connected = True
        log.info(
            "rig %s up; commands on %s; broker client id %s",
            self._profile.rig_id,
            self.topics.commands_for("<role>"),
            mqtt.client_id,
        )
        if self._lost_at_s is not None:
            down_s = self._clock.monotonic() - self._lost_at_s
            self._lost_at_s = None
            self._sources.record(ApiRestored(down_s=round(down_s, 3)))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(mqtt.wait_lost())
                tasks.create_task(self._publish_telemetry(mqtt))
                tasks.create_task(self._publish_state(mqtt))
                tasks.create_task(self._publish_events(mqtt))
        finally:
            if self._shutdown.is_set():
                # A clean disconnect sends no last will: say offline ourselves.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLEAN_DISCONNECT_TIMEOUT_S):
                        await mqtt.publish(
                            self.topics.state, self._sources.state(False), retain=True, qos=1
                        )

    async def _handle(self, request: Request, *, role: Role) -> JsonObject:
        return await self._dispatcher.handle(request.payload, role=role, client=request.client_id)

    def _on_lost(self, reason: str) -> None:
        self._lost_at_s = self._clock.monotonic()
        self._sources.record(ApiLost(reason=bounded(reason)))
        self._sources.stop_fluid(
            StopCause.API_LOST,
            f"the operators' channel was lost (broker connection: {bounded(reason, 120)}): "
            "nobody could see or stop the fluid",
        )

    def _on_request_refused(
        self, request: Request, error: RequestRefusedError, *, role: Role
    ) -> None:
        self._sources.record(
            RequestRefused(
                role=role.value, client=request.client_id, code=error.code, reason=str(error)
            )
        )

    async def _publish_telemetry(self, mqtt: MqttEndpoint) -> None:
        period_s = 1.0 / self._profile.telemetry.fluid_hz
        next_s = self._clock.monotonic()
        while True:
            await mqtt.publish(self.topics.fluid_telemetry, self._sources.telemetry())
            next_s += period_s
            await asyncio.sleep(max(0.0, next_s - self._clock.monotonic()))

    async def _publish_state(self, mqtt: MqttEndpoint) -> None:
        while True:
            # Cleared before the state is read, not after the publish: a change during the
            # broker's acknowledgement must wake the next publish, or the retained state stays
            # stale until the periodic republish (a `rig status` read "closing" after "captured").
            self._state_changed.clear()
            await mqtt.publish(self.topics.state, self._sources.state(True), retain=True, qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATE_REPUBLISH_S):
                    await self._state_changed.wait()

    async def _publish_events(self, mqtt: MqttEndpoint) -> None:
        # By cursor from the journal, which hands out committed events only, as the text it
        # holds: what the API has published is on disk, byte for byte. An event whose publish
        # fails with the connection is the first one published on the next: the story since a
        # loss is told whole once the broker is back.
        while True:
            for seq, body in await self._journal.read_after(self._published_seq):
                await mqtt.publish(self.topics.events, body, qos=1)
                self._published_seq = seq


def _first_cause(group: BaseExceptionGroup[Exception]) -> str:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
