"""MQTT v5 on aiomqtt 2.x: publish, subscribe, and request/response with correlation data.

Both the daemon (its API) and the simulator (its control topics) answer requests, and the CLI,
the console and the tests make them, so the request/response pattern lives here once. A request
carries the MQTT v5 ResponseTopic and CorrelationData properties; the responder publishes its
JSON answer to that topic with the same correlation data. A handler that raises is answered
with an error reply: a bad request never takes the responder down.

A responder assumes a logged-in client may be hostile (docs/api.md, "Security model"):
- its client id ends in 128 random bits, so nobody can claim it and take its session over;
- a reply goes only to a reply namespace, `reply/<client id>` (which the broker's ACL lets only
  that client read), never to a topic the requester chose freely;
- an oversized request is refused before any parsing, and every error echo is bounded;
- a retained request (one the broker would store and replay to the next responder) is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from drivers.transport.tasks import cancel_and_wait

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

MAX_REQUEST_BYTES = 16 * 1024
"""The largest request a responder reads. Commands are a few hundred bytes; anything bigger is
refused before it is parsed, so no payload can hold the event loop (issue 6: an 8 MB one
stalled it past the loop-stall guard)."""
MAX_PACKET_BYTES = 256 * 1024
"""The largest MQTT packet the broker accepts from or sends to anyone (rig/broker.py): the
sender of a larger one is disconnected before its payload is read."""
MAX_ECHO_CHARS = 200
"""The most of a client's input an error message quotes back."""
MAX_ERROR_CHARS = 1000
"""The longest error message a reply carries, whatever a handler put in it."""
MAX_CORRELATION_BYTES = 64
"""Correlation data longer than this is not echoed (ours is 16 bytes)."""
KEEPALIVE_S = 5
"""A broker that went silent (not closed) is noticed within about 1.5 keep-alive periods."""
ACK_TIMEOUT_S = 5.0
"""How long the broker may take to acknowledge a connection, a publish or a subscription."""
DISCONNECT_TIMEOUT_S = 1.0
"""How long a goodbye to the broker may take before the connection is simply dropped."""

_T = TypeVar("_T")

_REPLY_TOPIC = re.compile(r"reply/[A-Za-z0-9._-]{1,128}")
"""Exactly one level under `reply/`, no wildcards, no `$`, bounded: a client's reply namespace."""


def bounded(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def unguessable_client_id(name: str) -> str:
    """`name` plus 128 random bits: an id nobody else can claim to take this session over."""
    return f"{name}-{secrets.token_hex(16)}"


def is_reply_topic(topic: str) -> bool:
    return _REPLY_TOPIC.fullmatch(topic) is not None


@dataclass(frozen=True)
class Request:
    """A request as a responder's handler sees it."""

    payload: bytes
    client_id: str | None
    """The requester's client id as named by its reply topic (`reply/<client id>`, which only
    that client can read), or None for a request without a response topic."""


class RequestRefusedError(ValueError):
    """A request the endpoint refuses before its handler sees it; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


RequestHandler = Callable[[Request], Coroutine[Any, Any, JsonObject]]
RefusalListener = Callable[[Request, RequestRefusedError], None]


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
        name: str = "rig",
        will_topic: str | None = None,
        will_payload: JsonObject | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca_file: Path | None = None,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        """With `tls_ca_file`, the connection is TLS and the broker's certificate must chain to
        that CA (hostname checked): a rig on a site network never talks in the clear.

        The client id is `name` plus random bits (unguessable_client_id), new for each endpoint."""
        self.client_id = unguessable_client_id(name)
        will = None
        if will_topic is not None:
            will = aiomqtt.Will(will_topic, dumps(will_payload or {}), qos=1, retain=True)
        # Asks the broker not to send us anything larger (MQTT v5), on a site broker too.
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.MaximumPacketSize = MAX_PACKET_BYTES
        self._client = aiomqtt.Client(
            host,
            port,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=will,
            username=username,
            password=password,
            # aiomqtt waits without bound; every bound is ours (__aenter__, _acknowledged,
            # __aexit__): its own asyncio.wait_for loses cancellations on 3.11 (_acknowledged)
            timeout=math.inf,
            keepalive=keepalive_s,
            properties=connect,
            # Nagle's algorithm holds a small publish while the previous one is unacknowledged,
            # and the peer delays its ACKs: 50 Hz telemetry reached a subscriber 25 ms late one
            # message in five (p99 29.8 ms, p50 1.2 ms). Paho leaves the option off.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            tls_params=None
            if tls_ca_file is None
            else aiomqtt.TLSParameters(ca_certs=str(tls_ca_file)),
        )
        self._reply_topic = f"reply/{self.client_id}"
        self._pending: dict[bytes, asyncio.Future[JsonObject]] = {}
        self._handlers: dict[str, tuple[RequestHandler, RefusalListener | None]] = {}
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
        try:
            async with asyncio.timeout(ACK_TIMEOUT_S):
                await self._client.__aenter__()
        except TimeoutError:
            raise aiomqtt.MqttError(
                f"no answer to the connection from the broker within {ACK_TIMEOUT_S:g} s"
            ) from None
        self._reader = asyncio.create_task(self._read_loop(), name=f"mqtt-{self.client_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel_and_wait(self._reader, *self._requests)
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await self._client.__aexit__(exc_type, exc, tb)
        except (aiomqtt.MqttError, TimeoutError) as failed:
            # Leaving on an exception already (a cancellation, a lost connection): that one
            # goes on; a failed goodbye must not replace it (a swallowed cancellation would
            # keep a shutting-down task alive).
            if exc is None:
                raise
            log.info("disconnect from the broker failed (%s) while leaving on %r", failed, exc)

    async def wait_lost(self) -> None:
        """Return never; raise MqttError once the connection to the broker is gone (closed by
        the broker, taken over, or silent past the keep-alive)."""
        assert self._reader is not None, "use the endpoint in `async with`"
        await asyncio.shield(self._reader)
        raise aiomqtt.MqttError("the connection to the broker ended")

    async def _acknowledged(self, operation: Awaitable[_T]) -> _T:
        """`operation` (an aiomqtt publish or subscribe told to wait without bound), bounded here.

        aiomqtt bounds its own waits for the broker's acknowledgement with asyncio.wait_for,
        which on Python 3.11 loses a cancellation that arrives as the acknowledgement does
        (CPython gh-86296, fixed in 3.12). A publishing loop then ran on after its cancellation,
        and the daemon's shutdown waited for it for ever. With `timeout=math.inf` aiomqtt awaits
        plainly, and asyncio.timeout keeps both the bound and the cancellation.
        """
        try:
            async with asyncio.timeout(ACK_TIMEOUT_S):
                return await operation
        except TimeoutError:
            raise aiomqtt.MqttError(
                f"no acknowledgement from the broker within {ACK_TIMEOUT_S:g} s"
            ) from None

    async def publish(
        self, topic: str, payload: JsonObject | bytes, *, retain: bool = False, qos: int = 0
    ) -> None:
        data = payload if isinstance(payload, bytes) else dumps(payload)
        await self._acknowledged(
            self._client.publish(topic, data, qos=qos, retain=retain, timeout=math.inf)
        )

    async def subscribe(
        self, topic: str, *, qos: int = 0, keep: int = 10_000
    ) -> asyncio.Queue[aiomqtt.Message]:
        """Messages on `topic` (wildcards allowed) arrive in the returned queue, which holds the
        newest `keep` (a few for large messages: video frames)."""
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=keep)
        self._queues.append((topic, queue))
        granted = await self._acknowledged(self._client.subscribe(topic, qos=qos, timeout=math.inf))
        refused = [str(code) for code in granted if getattr(code, "is_failure", False)]
        if refused:
            raise BrokerRefusedError(
                f"the broker refused the subscription to {topic}: {refused[0]}"
            )
        return queue

    async def serve(
        self, topic: str, handler: RequestHandler, *, on_refused: RefusalListener | None = None
    ) -> None:
        """Answer every request on `topic` with `handler`'s JSON object.

        A request that is oversized, retained or names a response topic outside the reply
        namespace never reaches `handler`: `on_refused` hears of it (to record it), and the
        requester gets an error reply where it has a reply namespace to receive it.
        """
        self._handlers[topic] = (handler, on_refused)
        # Retained requests: the broker must not replay a stored one when we subscribe (retain
        # handling 2), and a live one keeps its retain flag (retain-as-published) so that it can
        # be refused: a command stored on the broker would run again on every restart.
        options = SubscribeOptions(
            qos=1,
            retainAsPublished=True,
            retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND,
        )
        await self._acknowledged(self._client.subscribe(topic, options=options, timeout=math.inf))

    async def request(
        self, topic: str, payload: JsonObject | bytes, *, timeout_s: float = 3.0
    ) -> JsonObject:
        if not self._reply_subscribed:
            await self._acknowledged(
                self._client.subscribe(self._reply_topic, qos=1, timeout=math.inf)
            )
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
            await self._acknowledged(
                self._client.publish(topic, data, qos=1, properties=properties, timeout=math.inf)
            )
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
        try:
            await self._dispatch_messages()
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(aiomqtt.MqttError("the connection to the broker ended"))

    async def _dispatch_messages(self) -> None:
        async for message in self._client.messages:
            topic = str(message.topic)
            if topic == self._reply_topic:
                self._on_reply(message)
                continue
            served = self._handlers.get(topic)
            if served is not None:
                task = asyncio.create_task(self._answer(*served, message))
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

    async def _answer(
        self, handler: RequestHandler, on_refused: RefusalListener | None, message: aiomqtt.Message
    ) -> None:
        payload = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        )
        response_topic = getattr(message.properties, "ResponseTopic", None)
        reply_to = response_topic if response_topic and is_reply_topic(response_topic) else None
        request = Request(payload, None if reply_to is None else reply_to.removeprefix("reply/"))
        try:
            _check(message, payload, response_topic)
        except RequestRefusedError as exc:
            log.warning("request on %s refused: %s", message.topic, exc)
            if on_refused is not None:
                on_refused(request, exc)
            reply: JsonObject = {"ok": False, "error": {"code": exc.code, "message": str(exc)}}
        else:
            # A request once begun runs to its end even if the connection that brought it goes
            # (a self-test cut in half would leave the rig in between): shielded, and kept.
            handling = asyncio.create_task(handler(request))
            _HANDLING.add(handling)
            handling.add_done_callback(_HANDLING.discard)
            try:
                reply = await asyncio.shield(handling)
            except asyncio.CancelledError:
                handling.add_done_callback(_log_unheard)
                raise
            except Exception as exc:
                log.exception("request handler failed on %r", payload[:MAX_ECHO_CHARS])
                reply = {
                    "ok": False,
                    "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"},
                }
        if reply_to is None:
            if response_topic is None:
                log.info("request on %s without a response topic: %r", message.topic, reply)
            return
        error = reply.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            error["message"] = bounded(error["message"], MAX_ERROR_CHARS)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None and len(correlation) <= MAX_CORRELATION_BYTES:
            properties.CorrelationData = correlation
        await self._acknowledged(
            self._client.publish(
                reply_to, dumps(reply), qos=1, properties=properties, timeout=math.inf
            )
        )


_HANDLING: set[asyncio.Task[JsonObject]] = set()
"""Handlers running, referenced until they end (asyncio keeps only weak references)."""


def _log_unheard(task: asyncio.Task[JsonObject]) -> None:
    """The outcome of a request whose connection went away before it could be answered."""
    if task.cancelled():
        log.warning("a request's handler was cancelled after its connection went away")
    elif task.exception() is not None:
        log.error("a request failed after its connection went away", exc_info=task.exception())
    else:
        log.info("a request finished after its connection went away: %r", task.result())


def _check(message: aiomqtt.Message, payload: bytes, response_topic: str | None) -> None:
    """Refuse what a responder must not act on, before anything parses the payload."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestRefusedError(
            "too_large",
            f"request of {len(payload)} bytes: expected at most {MAX_REQUEST_BYTES} bytes",
        )
    if message.retain:
        raise RequestRefusedError(
            "retained",
            "request published with the retain flag: a request must not be stored on the "
            "broker (it would run again on every restart); publish it without retain",
        )
    if response_topic is not None and not is_reply_topic(response_topic):
        raise RequestRefusedError(
            "bad_response_topic",
            f"ResponseTopic = {bounded(repr(response_topic), 80)}: expected reply/<your client "
            "id> (one level, no wildcards, at most 128 characters of A-Z a-z 0-9 . _ -)",
        )
