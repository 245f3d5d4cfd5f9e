"""`rig bench telemetry`: from the daemon's telemetry publish to the value in the console's DOM.

The real daemon on the simulator (`rig sim`'s processes), `rig console`'s server logged in as the
surgeon, and Debian's Chromium showing the page (Playwright, headless). The daemon stamps each
telemetry message with its wall time when it builds it for publishing; the page stamps the
moment it has written the values into the DOM; both clocks are this machine's. The pump
irrigates throughout, so the values change. Messages of the first 2 s (page start-up) are left
out.

`subscriber_p50_ms`, `subscriber_p99_ms`: the same messages' latency to a plain MQTT client
beside the console (an engineer's): the daemon's and the broker's share; the rest is the
console's server and the browser. `load_1min`, `cpu_pressure_some_avg10`: the machine's load at
the end (the figures mean little without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from drivers.transport.tasks import cancel_and_wait
from rig.api.roles import Role
from rig.bench.browser import chromium, page_at
from rig.bench.session import (
    BenchError,
    BenchSession,
    engineer_session,
    machine_load,
    percentile,
    percentile_figure,
)
from rig.config import RigProfile
from rig.console.server import ConsoleServer, new_token, serving
from rig.launcher import SimRig, start_sim_rig

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

WARM_UP_S = 2.0


@contextlib.asynccontextmanager
async def surgeon_console_page(
    rig: SimRig, browser: Browser
) -> AsyncIterator[tuple[Page, ConsoleServer]]:
    """`rig console` as the surgeon on `rig`, its page open in `browser`."""
    token = new_token()
    server = ConsoleServer(rig.profile.rig_id, Role.SURGEON, token=token)
    username, password = rig.credentials_of(Role.SURGEON)
    async with (
        serving(server, "127.0.0.1", 0) as port,
        MqttEndpoint(
            rig.broker_host, rig.broker_port, username=username, password=password
        ) as mqtt,
    ):
        bridge = asyncio.create_task(server.bridge(mqtt))
        try:
            async with page_at(browser, f"http://127.0.0.1:{port}/?token={token}") as page:
                yield page, server
        finally:
            await cancel_and_wait(bridge)


async def run_telemetry_latency(
    profile_path: Path,
    profile: RigProfile,
    duration_s: float,
    browser: Browser | None = None,
) -> JsonObject:
    """`browser`: one already running (the console's tests share theirs); else Chromium is
    launched here, before the rig starts, so that its start-up burst is over when the rig runs
    (rig/bench/browser.py)."""
    async with contextlib.AsyncExitStack() as stack:
        if browser is None:
            browser = await stack.enter_async_context(chromium())
        latencies, at_subscriber = await _latencies(profile_path, profile, duration_s, browser)
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
        "subscriber_p50_ms": percentile_figure(at_subscriber, 50, 2),
        "subscriber_p99_ms": percentile_figure(at_subscriber, 99, 2),
        **machine_load(),
    }


async def _latencies(
    profile_path: Path, profile: RigProfile, duration_s: float, browser: Browser
) -> tuple[list[float], list[float]]:
    """(the page's latencies, a plain MQTT subscriber's) over the same `duration_s`."""
    rig = await start_sim_rig(profile_path, profile)
    try:
        async with engineer_session(rig) as session:
            await session.ready()
            reply = await session.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
            if not reply.get("ok"):
                raise BenchError(f"irrigate refused: {reply}")
            async with surgeon_console_page(rig, browser) as (page, _):
                await asyncio.sleep(WARM_UP_S)
                await page.evaluate("() => { window.__console.telemetryLatencyMs = []; }")
                async with _subscriber(session) as at_subscriber:
                    await asyncio.sleep(duration_s)
                at_page: list[float] = await page.evaluate(
                    "() => window.__console.telemetryLatencyMs"
                )
            await session.command({"op": "fluid.stop"})
    finally:
        await rig.stop()
    return at_page, at_subscriber


@contextlib.asynccontextmanager
async def _subscriber(session: BenchSession) -> AsyncIterator[list[float]]:
    """The telemetry's latency to a plain MQTT client beside the console (the engineer's
    session): the daemon's and the broker's share of the page's figure."""
    latencies: list[float] = []
    messages = await session.mqtt.subscribe(session.topics.fluid_telemetry)

    async def arrive() -> None:
        while True:
            message = await messages.get()
            arrived_s = time.time()
            if isinstance(message.payload, bytes):
                wall_time = json.loads(message.payload).get("wall_time")
                if isinstance(wall_time, int | float):
                    latencies.append((arrived_s - wall_time) * 1000)

    task = asyncio.create_task(arrive())
    try:
        yield latencies
    finally:
        await cancel_and_wait(task)
