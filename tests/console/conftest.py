"""The console in a real browser: the simulated rig as `rig sim` runs it, `rig console`'s server
logged in as a role, and Debian's Chromium driven by Playwright. Each test's last screenshot is
kept in test-artefacts/console/."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from drivers.transport.mqtt import MqttEndpoint
from rig.api.roles import Role
from rig.console.server import ConsoleServer, new_token, serving
from tests.system.harness import RigUnderTest, running_rig

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_PRESENT = CHROMIUM.exists()
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "console"
# As the machine's probe starts it: without the background-networking flags Chromium's own
# connections are refused by a closed network, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = [pytest.mark.system]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[RigUnderTest]:
    async with running_rig(tmp_path) as under_test:
        await under_test.wait_ready()
        yield under_test


@contextlib.asynccontextmanager
async def console_url(rig: RigUnderTest, role: Role) -> AsyncIterator[str]:
    """`rig console` as `role` on `rig`, serving on a free port; yields the page's address."""
    token = new_token()
    server = ConsoleServer(rig.rig.profile.rig_id, role, token=token)
    async with serving(server, "127.0.0.1", 0) as port:
        username, password = rig.rig.credentials_of(role)
        async with MqttEndpoint(
            rig.rig.broker_host, rig.rig.broker_port, username=username, password=password
        ) as mqtt:
            bridge = asyncio.create_task(server.bridge(mqtt))
            try:
                yield f"http://127.0.0.1:{port}/?token={token}"
            finally:
                bridge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bridge


@contextlib.asynccontextmanager
async def browser_page(url: str, name: str) -> AsyncIterator[Page]:
    if not CHROMIUM_PRESENT:
        pytest.fail(f"{CHROMIUM} is missing: ./run test installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await page.goto(url)
            try:
                yield page
            finally:
                ARTEFACTS.mkdir(parents=True, exist_ok=True)
                safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
                with contextlib.suppress(Exception):
                    await page.screenshot(path=str(ARTEFACTS / f"{safe}.png"))
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def console_page(
    rig: RigUnderTest, name: str, role: Role = Role.SURGEON
) -> AsyncIterator[Page]:
    async with console_url(rig, role) as url, browser_page(url, name) as page:
        await page.wait_for_function("() => document.getElementById('role').textContent !== '-'")
        yield page
