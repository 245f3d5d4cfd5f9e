"""`rig console`'s web server: the page, and one WebSocket per open page bridged to MQTT.

Why a bridge and not MQTT over WebSockets straight from the browser to Mosquitto: the console
logs in to the broker once, as its role, with credentials that never reach the browser; the page
can do exactly what that role may (the broker's ACL still applies to every request the console
forwards), and an observer's console refuses commands before they leave it. The state, telemetry
and events reach every page as JSON text over its WebSocket, enriched with what the page cannot
know by itself (each stop cause in plain words, from the one table in rig/fluid/events.py).

The scope's video comes the same way, from the rig's broker (rig/camera/stream.py): the
server subscribes to the view, if its role may see video, and holds a lease on it while a page
shows it; each page gets the newest frame, unchanged, over a WebSocket of its own (`/video`,
so that a 50 kB frame never holds up a telemetry message), from this server's own origin.

Access: the server listens on the loopback interface unless told otherwise, and every request
must carry the session token printed with the console's address (as a `token` query parameter
once, then as a cookie): another local user, or a page from another origin, cannot drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
from aiohttp import web

from drivers.transport.mqtt import (
    BrokerRefusedError,
    JsonObject,
    MqttEndpoint,
    RequestTimeoutError,
)
from drivers.transport.tasks import cancel_and_wait
from rig.api.roles import COMMANDING_ROLES, VIDEO_ROLES, Role
from rig.api.topics import RigTopics
from rig.camera.stream import LEASE_RENEW_S
from rig.fluid.events import StopCause

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
COOKIE = "rig_console"
MAX_COMMAND_BYTES = 16 * 1024
"""As the daemon's own limit: a larger message from a page is refused here already."""
COMMAND_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 8
"""Commands one page may have waiting for an answer; more are refused (`busy`)."""
SEND_QUEUE = 256
"""Messages held for one page; a page that falls behind loses the oldest telemetry first."""
VIDEO_KEEP = 2
"""Video frames held between the broker and the pages: a console that falls behind skips
frames, it never shows old ones late."""


@dataclass(eq=False)  # each page is itself: kept in a set by identity
class Page:
    """One open page: its socket and the messages waiting for it."""

    socket: web.WebSocketResponse
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    requests: set[asyncio.Task[None]] = field(default_factory=set)

    def offer(self, text: str) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(text)


@dataclass(eq=False)
class Viewer:
    """One page's video socket: only the newest frame waits for it."""

    socket: web.WebSocketResponse
    latest: bytes = b""
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, frame: bytes) -> None:
        self.latest = frame
        self.ready.set()


class ConsoleServer:
    def __init__(self, rig_id: str, role: Role, *, token: str) -> None:
        self._mqtt: MqttEndpoint | None = None
        self._topics = RigTopics(rig_id)
        self._role = role
        self._token = token
        self._pages: set[Page] = set()
        self._viewers: set[Viewer] = set()
        self._viewer_joined = asyncio.Event()
        self._last_state: str | None = None
        self._broker_up = False
        self._command_lock = asyncio.Lock()
        self.app = web.Application(client_max_size=MAX_COMMAND_BYTES)
        self.app.router.add_get("/", self._index)
        self.app.router.add_get("/engineering", self._engineering)
        self.app.router.add_get("/ws", self._socket)
        self.app.router.add_get("/video", self._video)
        self.app.router.add_static("/static", STATIC)

    @property
    def can_command(self) -> bool:
        return self._role in COMMANDING_ROLES

    @property
    def can_see_video(self) -> bool:
        return self._role in VIDEO_ROLES

    # -- the bridge: MQTT to the pages ---------------------------------------------------------

    async def bridge(self, mqtt: MqttEndpoint) -> None:
        """Forward the state (retained: the last will's `online: false` included), telemetry
        and events to every page, and the pages' commands to the rig, over `mqtt`; returns
        when that broker connection ends (the pages are told: `broker: false`)."""
        state = await mqtt.subscribe(self._topics.state, qos=1)
        telemetry = await mqtt.subscribe(self._topics.fluid_telemetry)
        events = await mqtt.subscribe(self._topics.events, qos=1)
        video = None
        if self.can_see_video:
            video = await mqtt.subscribe(self._topics.video, keep=VIDEO_KEEP)
        self._mqtt, self._broker_up = mqtt, True
        self._broadcast(json.dumps({"type": "console", "broker": True}))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._forward(state, "state"))
                tasks.create_task(self._forward(telemetry, "telemetry"))
                tasks.create_task(self._forward(events, "event"))
                tasks.create_task(mqtt.wait_lost())
                if video is not None:
                    tasks.create_task(self._forward_video(video))
                    tasks.create_task(self._hold_lease(mqtt))
        except* aiomqtt.MqttError:
            pass
        finally:
            self._mqtt, self._broker_up = None, False
            self._broadcast(json.dumps({"type": "console", "broker": False}))

    async def _forward(self, queue: asyncio.Queue[Any], kind: str) -> None:
        while True:
            message = await queue.get()
            try:
                data = json.loads(message.payload)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            text = json.dumps({"type": kind, "data": _enriched(kind, data)})
            if kind == "state":
                self._last_state = text
            self._broadcast(text)

    async def _forward_video(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            payload = (await queue.get()).payload
            if isinstance(payload, bytes):
                for viewer in self._viewers:
                    viewer.offer(payload)

    async def _hold_lease(self, mqtt: MqttEndpoint) -> None:
        """While a page shows the video, ask the camera for it every LEASE_RENEW_S (at once
        when the first page opens)."""
        while True:
            if self._viewers:
                await mqtt.publish(self._topics.video_lease, b"1")
            self._viewer_joined.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LEASE_RENEW_S):
                    await self._viewer_joined.wait()

    def _broadcast(self, text: str) -> None:
        for page in self._pages:
            page.offer(text)

    # -- HTTP ----------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        return hmac.compare_digest(given.encode(), self._token.encode())

    def _page(self, request: web.Request, name: str) -> web.StreamResponse:
        if not self._authorised(request):
            raise web.HTTPForbidden(text="open the address `rig console` printed (with its token)")
        response = web.FileResponse(STATIC / name)
        response.set_cookie(COOKIE, self._token, httponly=True, samesite="Strict")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, "console.html")

    async def _engineering(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, "engineering.html")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            raise web.HTTPForbidden()
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        socket = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_COMMAND_BYTES)
        await socket.prepare(request)
        page = Page(socket)
        hello = {
            "type": "hello",
            "role": self._role.value,
            "can_command": self.can_command,
            "video": self.can_see_video,
        }
        page.offer(json.dumps(hello))
        if self._last_state is not None:
            page.offer(self._last_state)
        if not self._broker_up:
            page.offer(json.dumps({"type": "console", "broker": False}))
        self._pages.add(page)
        sender = asyncio.create_task(self._send_loop(page))
        try:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                if len(page.requests) >= MAX_IN_FLIGHT:
                    # A page that floods: answered, never queued without bound.
                    busy = _refusal("busy", f"more than {MAX_IN_FLIGHT} commands in flight")
                    page.offer(json.dumps({"type": "reply", "id": None, "reply": busy}))
                    continue
                task = asyncio.create_task(self._on_page_message(page, message.data))
                page.requests.add(task)
                task.add_done_callback(page.requests.discard)
        finally:
            self._pages.discard(page)
            await cancel_and_wait(sender)
        return socket

    async def _video(self, request: web.Request) -> web.StreamResponse:
        """The scope's view for one page: each message as the camera sent it (its header and
        JPEG, rig/camera/stream.py), the newest only."""
        if not self._authorised(request):
            raise web.HTTPForbidden()
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin WebSocket refused")
        if not self.can_see_video:
            raise web.HTTPForbidden(text=f"this console is logged in as {self._role}: no video")
        # JPEGs do not deflate: per-message compression would cost both ends CPU for nothing.
        socket = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1024, compress=False)
        await socket.prepare(request)
        viewer = Viewer(socket)
        self._viewers.add(viewer)
        self._viewer_joined.set()
        sender = asyncio.create_task(self._send_video(viewer))
        try:
            async for _ in socket:
                pass  # the page sends nothing on this socket
        finally:
            self._viewers.discard(viewer)
            await cancel_and_wait(sender)
        return socket

    @staticmethod
    async def _send_video(viewer: Viewer) -> None:
        while True:
            await viewer.ready.wait()
            viewer.ready.clear()
            try:
                await viewer.socket.send_bytes(viewer.latest)
            except (ConnectionError, RuntimeError):
                return

    async def _send_loop(self, page: Page) -> None:
        while True:
            text = await page.queue.get()
            try:
                await page.socket.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _on_page_message(self, page: Page, text: str) -> None:
        """A page asks: `{"type": "command", "id": N, "command": {...}}`; it gets
        `{"type": "reply", "id": N, "reply": {...}}` (the daemon's reply, or the console's own
        refusal in the same shape)."""
        try:
            message = json.loads(text)
            request_id = message["id"]
            command = message["command"]
            if message.get("type") != "command" or not isinstance(command, dict):
                raise ValueError("expected {type: command, id, command: {...}}")
        except (ValueError, KeyError, TypeError) as exc:
            page.offer(
                json.dumps({"type": "reply", "id": None, "reply": _refusal("invalid", str(exc))})
            )
            return
        reply = await self.command(command)
        page.offer(json.dumps({"type": "reply", "id": request_id, "reply": reply}))

    async def command(self, command: JsonObject) -> JsonObject:
        """A command from a page or the console's pedal, sent as the console's role."""
        if not self.can_command and command.get("op") != "status":
            return _refusal("denied", f"this console is logged in as {self._role}: it only reads")
        mqtt = self._mqtt
        if mqtt is None:
            return _refusal("no_answer", "the console is not connected to the rig's broker")
        async with self._command_lock:  # one request in flight: refusals are told apart
            try:
                return await mqtt.request(
                    self._topics.commands_for(self._role), command, timeout_s=COMMAND_TIMEOUT_S
                )
            except RequestTimeoutError:
                return _refusal("no_answer", "the rig did not answer (offline?)")
            except BrokerRefusedError as exc:
                return _refusal("denied", str(exc))
            except Exception as exc:  # the broker connection broke under the request
                return _refusal("no_answer", f"the console lost the broker: {exc}")


def _refusal(code: str, message: str) -> JsonObject:
    return {"ok": False, "error": {"code": code, "message": message}}


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _enriched(kind: str, data: JsonObject) -> JsonObject:
    """What the page shows in words it cannot derive: each stop cause in plain words."""
    if kind == "state":
        for key in ("last_stop", "fault"):
            stop = data.get(key)
            if isinstance(stop, dict):
                data[key] = {**stop, "words": _words(stop.get("cause"))}
    elif kind == "event" and data.get("kind") == "stop":
        data["words"] = _words(data.get("cause"))
    return data


def _words(cause: object) -> str | None:
    try:
        return StopCause(str(cause)).in_plain_words
    except ValueError:
        return None


def new_token() -> str:
    return secrets.token_urlsafe(18)


@contextlib.asynccontextmanager
async def serving(server: ConsoleServer, host: str, port: int) -> AsyncIterator[int]:
    """Serve `server` on host:port (0: a free port); yields the port."""
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    try:
        yield bound
    finally:
        await runner.cleanup()
