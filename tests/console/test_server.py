"""The console's web server on its own (no broker, no browser): who may open it, and what a
hostile page gets for malformed, foreign or flooding requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from drivers.transport.mqtt import MqttEndpoint
from rig.api.roles import Role
from rig.console.server import MAX_IN_FLIGHT, ConsoleServer

TOKEN = "t0ken"


class HeldBroker:
    """Stands in for the console's MQTT endpoint: every request waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def request(self, topic: str, payload: object, *, timeout_s: float) -> dict[str, Any]:
        await self.release.wait()
        return {"ok": True, "result": {}}


@pytest.fixture
def held() -> HeldBroker:
    return HeldBroker()


@pytest.fixture
async def client(
    held: HeldBroker,
) -> AsyncIterator[TestClient[aiohttp.web.Request, aiohttp.web.Application]]:
    server = ConsoleServer("sim-1", Role.SURGEON, token=TOKEN)
    server._mqtt = cast("MqttEndpoint", held)
    async with TestClient(TestServer(server.app)) as test_client:
        yield test_client


async def test_the_page_needs_the_token_and_then_sets_it_as_a_strict_cookie(
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application],
) -> None:
    assert (await client.get("/")).status == 403
    assert (await client.get("/?token=wrong")).status == 403
    assert (await client.get("/ws")).status == 403
    page = await client.get(f"/?token={TOKEN}")
    assert page.status == 200 and "E-STOP" in await page.text()
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert (await client.get("/engineering")).status == 200  # the cookie now


async def test_a_websocket_from_another_origin_is_refused(
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application],
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect(f"/ws?token={TOKEN}", headers={"Origin": "http://evil.example"})


async def test_malformed_and_flooding_messages_are_answered_never_queued_without_bound(
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application], held: HeldBroker
) -> None:
    socket = await client.ws_connect(f"/ws?token={TOKEN}")
    hello = json.loads((await socket.receive()).data)
    assert hello == {"type": "hello", "role": "surgeon", "can_command": True, "video": True}
    await socket.send_str("not json")
    await socket.send_str(json.dumps({"type": "command", "id": 1, "command": "fluid.stop"}))
    for _ in range(2):
        reply = await _next_reply(socket)
        assert reply["reply"]["error"]["code"] == "invalid"
    # The rig holds its answers: past MAX_IN_FLIGHT waiting, a flood is answered `busy` at once.
    flood = MAX_IN_FLIGHT * 4
    for index in range(flood):
        command = {"type": "command", "id": index, "command": {"op": "fluid.stop"}}
        await socket.send_str(json.dumps(command))
    busy = [await _next_reply(socket) for _ in range(flood - MAX_IN_FLIGHT)]
    assert all(reply["reply"]["error"]["code"] == "busy" for reply in busy)
    held.release.set()
    answered = [await _next_reply(socket) for _ in range(MAX_IN_FLIGHT)]
    assert sorted(reply["id"] for reply in answered) == list(range(MAX_IN_FLIGHT))
    assert all(reply["reply"]["ok"] for reply in answered)
    await socket.close()


async def _next_reply(socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            message: dict[str, Any] = json.loads((await socket.receive()).data)
            if message.get("type") == "reply":
                return message


async def test_the_video_socket_needs_the_token_the_origin_and_a_role_that_sees_video(
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application],
) -> None:
    assert (await client.get("/video")).status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect(f"/video?token={TOKEN}", headers={"Origin": "http://evil.example"})
    observer = ConsoleServer("sim-1", Role.OBSERVER, token=TOKEN)
    async with TestClient(TestServer(observer.app)) as observer_client:
        response = await observer_client.get(f"/video?token={TOKEN}")
        assert response.status == 403 and "no video" in await response.text()


async def test_a_frame_reaches_the_page_as_the_camera_sent_it() -> None:
    server = ConsoleServer("sim-1", Role.SURGEON, token=TOKEN)
    frames: asyncio.Queue[Any] = asyncio.Queue()
    relay = asyncio.create_task(server._forward_video(frames))
    async with TestClient(TestServer(server.app)) as client:
        socket = await client.ws_connect(f"/video?token={TOKEN}")
        try:
            for _ in range(200):  # until the socket's handler has registered the page
                if server._viewers:
                    break
                await asyncio.sleep(0.01)
            frame = b"\x00\x02{}\xff\xd8jpeg"
            await frames.put(type("Message", (), {"payload": frame})())
            message = await socket.receive(timeout=2.0)
            assert message.type == aiohttp.WSMsgType.BINARY and message.data == frame
        finally:
            relay.cancel()
            await socket.close()
