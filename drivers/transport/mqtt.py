"""MQTT v5 on aiomqtt 2.x: publish, subscribe, and request/response with correlation data.

Both the daemon (its API) and the simulator (its control topics) answer requests, and the CLI,
the console and the tests make them, so the request/response pattern lives here once. A request
carries the MQTT v5 ResponseTopic and CorrelationData properties; the responder publishes its
JSON answer to that topic with the same correlation data. A handler that raises is answered
with an error reply: a bad request never takes the responder down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
RequestHandler = Callable[[bytes], Awaitable[JsonObject]]


class RequestTimeoutError(TimeoutError):
    pass


class BrokerRefusedError(PermissionError):
    """The broker answered a subscribe or a QoS 1 publish with a failure reason (MQTT v5
    SUBACK/PUBACK >= 0x80), e.g. 0x87 "Not authorized": the ACL keeps this client off that
    topic."""


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


class MqttEndpoint:
    """One connection to the broker; use as `async with MqttEndpoint(...) as mqtt:`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        will_topic: str | None = None,
        will_payload: JsonObject | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca_file: Path | None = None,
    ) -> None:
        """With `tls_ca_file`, the connection is TLS and the broker's certificate must chain to
        that CA (hostname checked): a rig on a site network never talks in the clear."""
        self.client_id = client_id or f"rig-{uuid.uuid4().hex[:10]}"
        will = None
        if will_topic is not None:
            will = aiomqtt.Will(will_topic, dumps(will_payload or {}), qos=1, retain=True)
        self._client = aiomqtt.Client(
            host,
            port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            username=username,
            password=password,
            timeout=5.0,
            tls_params=None
            if tls_ca_file is None
            else aiomqtt.TLSParameters(ca_certs=str(tls_ca_file)),
        )
        self._reply_topic = f"reply/{self.client_id}"
        self._pending: dict[bytes, asyncio.Future[JsonObject]] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._queues: list[tuple[str, asyncio.Queue[aiomqtt.Message]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()
        self._reply_subscribed = False
        self._refused_publishes = 0
        self._last_refusal = ""
        self._watch_publish_acks()

    def _watch_publish_acks(self) -> None:
        """Keep the reason of every refused QoS 1 publish: aiomqtt completes the publish without
        looking at it, and a refused request would otherwise look like a silent responder."""
        paho_client = self._client._client
        aiomqtt_on_publish = cast("Callable[..., None]", paho_client.on_publish)

        def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            if getattr(reason, "is_failure", False):
                self._refused_publishes += 1  # a count, not a list: a long-lived client
                self._last_refusal = str(reason)
            aiomqtt_on_publish(client, userdata, mid, reason, props)

        paho_client.on_publish = on_publish

    async def __aenter__(self) -> MqttEndpoint:
        await self._client.__aenter__()
        self._reader = asyncio.create_task(self._read_loop(), name=f"mqtt-{self.client_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = [t for t in (self._reader, *self._requests) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.__aexit__(exc_type, exc, tb)

    async def publish(
        self, topic: str, payload: JsonObject | bytes, *, retain: bool = False, qos: int = 0
    ) -> None:
        data = payload if isinstance(payload, bytes) else dumps(payload)
        await self._client.publish(topic, data, qos=qos, retain=retain)

    async def subscribe(self, topic: str, *, qos: int = 0) -> asyncio.Queue[aiomqtt.Message]:
        """Messages on `topic` (wildcards allowed) arrive in the returned queue."""
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=10_000)
        self._queues.append((topic, queue))
        granted = await self._client.subscribe(topic, qos=qos)
        refused = [str(code) for code in granted if getattr(code, "is_failure", False)]
        if refused:
            raise BrokerRefusedError(
                f"the broker refused the subscription to {topic}: {refused[0]}"
            )
        return queue

    async def serve(self, topic: str, handler: RequestHandler) -> None:
        """Answer every request on `topic` with `handler`'s JSON object."""
        self._handlers[topic] = handler
        await self._client.subscribe(topic, qos=1)

    async def request(
        self, topic: str, payload: JsonObject | bytes, *, timeout_s: float = 3.0
    ) -> JsonObject:
        if not self._reply_subscribed:
            await self._client.subscribe(self._reply_topic, qos=1)
            self._reply_subscribed = True
        correlation = uuid.uuid4().bytes
        future: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self._reply_topic
        properties.CorrelationData = correlation
        data = payload if isinstance(payload, bytes) else dumps(payload)
        # Any refusal while this publish is in flight is taken as its own: a client makes one
        # request at a time (the daemon and the simulator answer requests, they make none).
        refused_before = self._refused_publishes
        try:
            await self._client.publish(topic, data, qos=1, properties=properties)
            if self._refused_publishes > refused_before:
                raise BrokerRefusedError(
                    f"the broker refused the request on {topic}: {self._last_refusal}"
                )
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            raise RequestTimeoutError(f"no reply on {topic} within {timeout_s:g} s") from None
        finally:
            self._pending.pop(correlation, None)

    async def _read_loop(self) -> None:
        async for message in self._client.messages:
            topic = str(message.topic)
            if topic == self._reply_topic:
                self._on_reply(message)
                continue
            handler = self._handlers.get(topic)
            if handler is not None:
                task = asyncio.create_task(self._answer(handler, message))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)
                continue
            for pattern, queue in self._queues:
                if message.topic.matches(pattern):
                    if queue.full():
                        queue.get_nowait()  # a slow consumer sees the newest data, not stale
                    queue.put_nowait(message)

    def _on_reply(self, message: aiomqtt.Message) -> None:
        correlation = getattr(message.properties, "CorrelationData", None)
        future = self._pending.get(bytes(correlation)) if correlation is not None else None
        if future is None or future.done():
            return
        try:
            payload = message.payload
            future.set_result(json.loads(payload if isinstance(payload, bytes | str) else b"{}"))
        except ValueError as exc:
            future.set_exception(exc)

    async def _answer(self, handler: RequestHandler, message: aiomqtt.Message) -> None:
        payload = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        )
        try:
            reply = await handler(payload)
        except Exception as exc:
            log.exception("request handler failed on %r", payload[:200])
            reply = {
                "ok": False,
                "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"},
            }
        response_topic = getattr(message.properties, "ResponseTopic", None)
        if not response_topic:
            log.warning("request on %s without a response topic: %r", message.topic, reply)
            return
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            properties.CorrelationData = correlation
        await self._client.publish(response_topic, dumps(reply), qos=1, properties=properties)
