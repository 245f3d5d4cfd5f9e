"""Debian's Chromium under Playwright (headless), for the benchmarks that measure the console in
a browser and for the console's browser tests.

One launch costs about a second of both cores in a dozen processes (Chromium's browser, GPU,
zygote and renderers start together). On a 2-core machine that burst starves a rig running
beside it for 100-270 ms: long enough for the simulated board to skip samples and the daemon's
loop to stall. So a caller launches its browser once, before the rig it measures starts, and
opens a page per use (`page_at`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from rig.bench.session import BenchError

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PRESENT = Path(CHROMIUM).exists()
# Without the background-networking flags Chromium's own connections are refused by a closed
# network, many at a time. Autoplay: the console's alarm tones start without a click.
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
VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}
"""The operating-room monitor the console is made for."""


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched headless through Playwright; closed on exit."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise BenchError(
            "playwright is not installed: it comes with the test dependencies (./run test)"
        ) from None
    if not CHROMIUM_PRESENT:
        raise BenchError(f"{CHROMIUM} is missing: ./run test installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def blank_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a context of its own (no cookies or storage shared with the browser's other
    pages), at the monitor's size; closed with its context on exit."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@contextlib.asynccontextmanager
async def page_at(browser: Browser, url: str) -> AsyncIterator[Page]:
    """`blank_page`, showing `url`."""
    async with blank_page(browser) as page:
        await page.goto(url)
        yield page
