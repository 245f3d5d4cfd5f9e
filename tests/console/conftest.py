"""The console in a real browser: the simulated rig as `rig sim` runs it, `rig console`'s server
logged in as a role, and Debian's Chromium driven by Playwright. Each test's last screenshot is
kept in test-artefacts/console/."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, Page

from drivers.transport.mqtt import MqttEndpoint
from rig.api.roles import Role
from rig.bench.browser import blank_page, chromium
from rig.console.server import ConsoleServer, new_token, serving
from tests.system.harness import RigUnderTest, running_rig

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "console"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium per test worker, for all its console tests: a launch starves the rigs
    running beside it (rig/bench/browser.py). Tests ask for it before their rig, so that a
    worker's one launch happens before its rig starts. Its tests run in the session's event
    loop, Playwright's connection to the browser being bound to the loop that made it."""
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tab(browser: Browser) -> AsyncIterator[Page]:
    """One page per test worker, which each test navigates to its console: a new page costs
    Chromium about 200 ms of CPU at once (a new window, its renderers; 300-1000 ms with a new
    context), a navigation about 60 ms. Each test leaves it on about:blank."""
    async with blank_page(browser) as page:
        yield page


@pytest_asyncio.fixture(loop_scope="session")
async def rig(tab: Page, tmp_path: Path) -> AsyncIterator[RigUnderTest]:
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
async def console_page(
    tab: Page, rig: RigUnderTest, name: str, role: Role = Role.SURGEON
) -> AsyncIterator[Page]:
    """The worker's page showing the console as `role` on `rig`; its last screenshot kept as
    `name`. On the way out the page goes to about:blank: it drops its sockets to this console
    before the console's server goes, and the next test starts from nothing."""
    async with console_url(rig, role) as url:
        await tab.goto(url)
        try:
            await tab.wait_for_function("() => document.getElementById('role').textContent !== '-'")
            yield tab
        finally:
            await keep_screenshot(tab, name)
            await tab.goto("about:blank")


async def keep_screenshot(page: Page, name: str) -> None:
    """The page as it is now, kept as test-artefacts/console/`name`.png (never fails a test)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    with contextlib.suppress(Exception):
        await page.screenshot(path=str(ARTEFACTS / f"{safe}.png"))
