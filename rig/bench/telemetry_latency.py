"""`rig bench telemetry`: from the daemon's telemetry publish to the value in the console's DOM.

The real daemon on the simulator (`rig sim`'s processes), `rig console`'s server logged in as the
surgeon, and Debian's Chromium showing the page (Playwright, headless). The daemon stamps each
telemetry message with its wall time when it builds it for publishing; the page stamps the
moment it has written the values into the DOM; both clocks are this machine's. The pump
irrigates throughout, so the values change. Messages of the first 2 s (page start-up) are left
out.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from drivers.transport.tasks import cancel_and_wait
from rig.api.roles import Role
from rig.bench.session import BenchError, engineer_session, percentile
from rig.config import RigProfile
from rig.console.server import ConsoleServer, new_token, serving
from rig.launcher import SimRig, start_sim_rig

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WARM_UP_S = 2.0
CHROMIUM_PRESENT = Path(CHROMIUM).exists()


@contextlib.asynccontextmanager
async def surgeon_console_page(rig: SimRig) -> AsyncIterator[tuple[Page, ConsoleServer]]:
    """`rig console` as the surgeon on `rig`, its page open in Debian's Chromium (headless)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise BenchError(
            "playwright is not installed: it comes with the test dependencies (./run test)"
        ) from None
    if not CHROMIUM_PRESENT:
        raise BenchError(f"{CHROMIUM} is missing: ./run test installs Debian's chromium")
    token = new_token()
    server = ConsoleServer(rig.profile.rig_id, Role.SURGEON, token=token)
    username, password = rig.credentials_of(Role.SURGEON)
    async with (
        serving(server, "127.0.0.1", 0) as port,
        MqttEndpoint(
            rig.broker_host, rig.broker_port, username=username, password=password
        ) as mqtt,
        async_playwright() as playwright,
    ):
        bridge = asyncio.create_task(server.bridge(mqtt))
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1920, "height": 1080})
            await page.goto(f"http://127.0.0.1:{port}/?token={token}")
            yield page, server
        finally:
            await browser.close()
            await cancel_and_wait(bridge)


async def run_telemetry_latency(
    profile_path: Path, profile: RigProfile, duration_s: float, progress: bool = False
) -> JsonObject:
    rig = await start_sim_rig(profile_path, profile)
    try:
        async with engineer_session(rig) as session:
            await session.ready()
            reply = await session.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
            if not reply.get("ok"):
                raise BenchError(f"irrigate refused: {reply}")
            async with surgeon_console_page(rig) as (page, _):
                await asyncio.sleep(WARM_UP_S)
                await page.evaluate("() => { window.__console.telemetryLatencyMs = []; }")
                await asyncio.sleep(duration_s)
                latencies: list[float] = await page.evaluate(
                    "() => window.__console.telemetryLatencyMs"
                )
            await session.command({"op": "fluid.stop"})
    finally:
        await rig.stop()
    if not latencies:
        raise BenchError("no telemetry reached the page")
    expected = duration_s * profile.telemetry.fluid_hz
    return {
        "benchmark": "telemetry",
        "measured": "daemon builds the telemetry message for publishing -> values written into "
        "the console page's DOM (Chromium, headless)",
        "duration_s": duration_s,
        "rate_hz": profile.telemetry.fluid_hz,
        "samples": len(latencies),
        "samples_expected": round(expected),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
    }
