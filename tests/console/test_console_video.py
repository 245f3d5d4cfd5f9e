"""The scope's video on the console, as an operating room has it (docs/console.md, "The
video"): the camera process sends the view through the rig's broker, the console's server relays
it to its page from its own origin, and only the roles that may see video get any of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Request, WebSocket

from rig.api.roles import Role
from rig.camera.stream import unpack_frame
from tests.console.conftest import console_page
from tests.system.harness import ready_rig_with_camera

# the session's loop: the one the worker's browser belongs to (conftest.py)
pytestmark = [pytest.mark.system, pytest.mark.asyncio(loop_scope="session")]

VIDEO_SHOWN = (
    "() => { const v = document.getElementById('video');"
    " return !v.classList.contains('hidden') && v.width === 223"
    " && window.__console.video.frames > 5 }"
)


async def test_the_page_plays_the_video_through_its_server_and_shows_its_loss(
    tab: Page, tmp_path: Path
) -> None:
    async with (
        ready_rig_with_camera(tmp_path) as rig,
        console_page(tab, rig, "video-lost") as page,
    ):
        requested: list[str] = []

        def on_request(request: Request) -> None:
            requested.append(request.url)

        def on_websocket(socket: WebSocket) -> None:
            requested.append(socket.url)

        page.on("request", on_request)
        page.on("websocket", on_websocket)
        await page.reload()
        await page.wait_for_function(VIDEO_SHOWN, timeout=15000)
        origin = page.url.split("/?")[0]
        # Everything the page fetched came from its own console server: the page knows no
        # address of the rig's, and the state names none.
        assert requested and all(url.split("/")[2] == origin.split("/")[2] for url in requested)
        assert any(url.endswith("/video") for url in requested), requested
        page.remove_listener("request", on_request)  # the page is the worker's (conftest.py)
        page.remove_listener("websocket", on_websocket)
        camera = (await rig.status())["camera"]
        assert "preview_url" not in camera and "/" not in camera["source"].split("//")[-1]

        # The camera unplugged: the page shows the loss within the camera's video timeout
        # (400 ms) of its last frame (plus the page's timer's lateness on a loaded machine),
        # and hides the last picture (never a frozen one).
        unplugged_at = await page.evaluate("() => performance.timeOrigin + performance.now()")
        await rig.sim("unplug", device="camera")
        await page.wait_for_function(
            f"() => window.__console.video.lostShownAt > {unplugged_at}", timeout=3000
        )
        video = await page.evaluate("() => window.__console.video")
        shown_after_ms = video["lostShownAt"] - video["lastFrameAt"]
        assert 390 <= shown_after_ms <= 400 + 200, shown_after_ms
        assert await page.is_visible("#no-video") and not await page.is_visible("#video")
        assert "VIDEO LOST" in await page.inner_text("#no-video")

        # And back once the camera is.
        await rig.sim("replug", device="camera")
        await page.wait_for_function(
            "() => !document.getElementById('video').classList.contains('hidden')",
            timeout=15000,
        )
        assert not await page.is_visible("#no-video")


async def test_an_observer_gets_no_video_from_its_console_nor_the_broker(
    tab: Page, tmp_path: Path
) -> None:
    async with ready_rig_with_camera(tmp_path) as rig:
        topics = rig.topics
        async with console_page(tab, rig, "video-observer", Role.OBSERVER) as page:
            await page.wait_for_function(
                "() => document.getElementById('no-video').textContent.includes('observer')"
            )
            # Its console server refuses it the video socket, whatever the page asks.
            status = await page.evaluate(
                "async () => (await fetch('/video', {headers: {Upgrade: 'websocket'}})).status"
            )
            assert status == 403
            assert not await page.is_visible("#video")

        async with rig.endpoint("observer") as observer, rig.endpoint("engineer") as engineer:
            seen = await observer.subscribe("rig/#", keep=1000)
            watched = await engineer.subscribe(topics.video, keep=1000)
            # An observer's lease starts no stream: the broker drops its publish (the ACL).
            for _ in range(3):
                await observer.publish(topics.video_lease, b"1")
                await asyncio.sleep(0.5)
            assert watched.empty(), "an observer's lease started the video"
            # With an engineer's lease the video flows; the observer, subscribed to everything
            # of the rig, still gets none of it (but does get the state).
            for _ in range(3):
                await engineer.publish(topics.video_lease, b"1")
                await asyncio.sleep(0.5)
            frames = _drain(watched)
            assert len(frames) >= 5, len(frames)
            header, jpeg = unpack_frame(frames[-1].payload)
            assert jpeg.startswith(b"\xff\xd8") and header["timeout_ms"] == 400
            topics_seen = {str(message.topic) for message in _drain(seen)}
            assert topics.state in topics_seen and topics.video not in topics_seen, topics_seen


def _drain(queue: asyncio.Queue[Any]) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
