"""The surgeon's console in Debian's Chromium against the simulated rig (docs/console.md)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import cv2
import pytest
from playwright.async_api import Browser, Page

from rig.api.roles import Role
from rig.bench.telemetry_latency import run_telemetry_latency
from rig.config import DEFAULT_PROFILE, load_profile
from tests.console.conftest import console_page, console_url, keep_screenshot
from tests.system.harness import RigUnderTest, ready_rig_with_camera

# the session's loop: the one the worker's browser belongs to (conftest.py)
pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(120),
    pytest.mark.asyncio(loop_scope="session"),
]

HIGH_ALARM_WITHIN_S = 0.2


async def test_the_page_loads_and_live_values_update(tab: Page, rig: RigUnderTest) -> None:
    async with console_page(tab, rig, "loads") as page:
        await page.wait_for_function(
            "() => document.getElementById('pressure').textContent !== '-'", timeout=5000
        )
        assert await page.text_content("#rig-state") == "rig ready"
        assert await page.text_content("#role") == "surgeon"
        before = await page.evaluate("() => window.__console.telemetryLatencyMs.length")
        await asyncio.sleep(0.5)
        after = await page.evaluate("() => window.__console.telemetryLatencyMs.length")
        # Live, not a rate check (rig bench telemetry measures that): a loaded CI machine has
        # rendered 13 of the 25 rows due in 0.5 s; a stale page renders none.
        assert after - before >= 5, "telemetry reaches the page as it is published"
        # Made for a 1920x1080 monitor: every control is whole on it, nothing scrolled away.
        outside = await page.evaluate(
            "() => [...document.querySelectorAll('button, input')].filter(e => {"
            " const r = e.getBoundingClientRect();"
            " return r.left < 0 || r.top < 0 || r.right > 1920 || r.bottom > 1080; })"
            ".map(e => e.id)"
        )
        assert outside == [], outside


async def test_clicking_irrigate_changes_the_simulated_flow(tab: Page, rig: RigUnderTest) -> None:
    await rig.prime()
    async with console_page(tab, rig, "irrigate") as page:
        await page.fill("#flow-input", "1.2")
        await page.click("#irrigate")
        state = await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
        assert state["pump"]["flow_ml_min"] == pytest.approx(1.2, rel=0.05)
        await page.wait_for_function(
            "() => Math.abs(Number(document.getElementById('flow').textContent) - 1.2) < 0.05",
            timeout=5000,
        )
        await page.keyboard.press("s")  # the stop shortcut
        await rig.wait_sim(lambda s: not s["pump"]["running"], 2.0)


async def test_a_resistance_stop_shows_a_high_alarm_within_200_ms_and_ack_keeps_it(
    tab: Page, rig: RigUnderTest
) -> None:
    async with console_page(tab, rig, "alarm") as page:
        await rig.irrigate_steadily(1.0)
        await rig.sim("scenario", name="tip_against_wall")
        stop = await rig.next_event(lambda e: e.get("kind") == "stop")
        await page.wait_for_function(
            "() => window.__console.alarmsShown.some(a => a.priority === 'high')", timeout=5000
        )
        shown = await page.evaluate(
            "() => window.__console.alarmsShown.find(a => a.priority === 'high')"
        )
        delay_s = shown["shown"] - stop["wall_time"]
        print(f"stop journaled -> HIGH alarm on the page: {delay_s * 1000:.1f} ms")
        assert 0 <= delay_s <= HIGH_ALARM_WITHIN_S
        box = page.locator("#alarm")
        assert "high" in (await box.get_attribute("class") or "")
        # HIGH flashes at 2 Hz (IEC 60601-1-8: 1.4-2.8 Hz).
        duration = await box.evaluate("e => getComputedStyle(e).animationDuration")
        assert duration == "0.5s"
        assert "against the wall" in (await page.text_content("#alarm-text") or "")
        assert "against the wall" in (await page.text_content("#last-stop") or "")
        await page.wait_for_function("() => window.__console.bursts.length >= 1", timeout=2000)
        await keep_screenshot(page, "alarm-high")  # the alarm raised, before its acknowledgement
        ack = await page.locator("#ack").bounding_box()
        assert ack is not None and ack["x"] + ack["width"] <= 1920, (
            ack
        )  # whole, beside a long cause
        assert await page.evaluate(
            "() => { const b = document.getElementById('ack');"
            " return b.scrollWidth <= b.clientWidth; }"
        )

        await page.click("#ack")
        await page.wait_for_function(
            "() => document.getElementById('alarm-audio').textContent === 'audio paused'",
            timeout=3000,
        )
        bursts = await page.evaluate("() => window.__console.bursts.length")
        await asyncio.sleep(1.0)
        # Silenced, but still shown and still flashing while the fault is latched.
        assert await page.evaluate("() => window.__console.bursts.length") == bursts
        assert await box.is_visible()
        assert "high" in (await box.get_attribute("class") or "")

        await rig.sim("clear")
        await asyncio.sleep(0.6)
        await page.click("#reset")
        await page.wait_for_selector("#alarm", state="hidden", timeout=3000)


async def test_the_offline_banner_shows_when_the_daemon_is_killed(
    tab: Page, rig: RigUnderTest
) -> None:
    async with console_page(tab, rig, "offline") as page:
        assert not await page.is_visible("#offline")
        killed_at = time.monotonic()
        rig.kill_daemon(signal.SIGKILL)
        await page.wait_for_selector("#offline", state="visible", timeout=10000)
        print(f"daemon killed -> offline banner: {time.monotonic() - killed_at:.2f} s")
        assert "RIG OFFLINE" in (await page.text_content("#offline") or "")
        assert await page.is_disabled("#irrigate")


async def test_an_observers_page_cannot_command(tab: Page, rig: RigUnderTest) -> None:
    await rig.prime()
    async with console_page(tab, rig, "observer", Role.OBSERVER) as page:
        assert await page.text_content("#role") == "observer (read only)"
        assert await page.is_disabled("#irrigate") and await page.is_disabled("#estop")
        # Around the disabled buttons: the page's own send, as a hostile page would.
        await page.evaluate("() => send({op: 'fluid.irrigate', flow_ml_min: 1.0})")
        await page.wait_for_function("() => window.__console.replies.length === 1")
        reply = await page.evaluate("() => window.__console.replies[0].reply")
        assert reply["ok"] is False and reply["error"]["code"] == "denied"
        await asyncio.sleep(0.5)
        assert not (await rig.sim("state"))["pump"]["running"]


async def test_the_engineering_view_shows_links_the_raw_state_and_plots(
    tab: Page, rig: RigUnderTest
) -> None:
    await rig.prime()
    assert (await rig.command({"op": "fluid.irrigate", "flow_ml_min": 2.0}))["ok"]
    async with console_url(rig, Role.ENGINEER) as url:
        await tab.goto(url.replace("/?token=", "/engineering?token="))
        try:
            # Link statistics: a row per serial device, their counters as columns.
            await tab.wait_for_function(
                "() => document.querySelectorAll('#links tr').length > 2", timeout=5000
            )
            rows = await tab.eval_on_selector_all(
                "#links tr th:first-child", "c => c.map(e => e.textContent)"
            )
            assert {"pump", "board"} <= set(rows), rows
            # The raw state, as the daemon publishes it.
            await tab.wait_for_function(
                "() => document.getElementById('state').textContent.length > 0"
            )
            state = json.loads(await tab.text_content("#state") or "{}")
            assert state["mode"] == "irrigating", state.get("mode")
            # The flow plot has drawn something, at both windows.
            drawn = (
                "() => { const c = document.getElementById('plot-flow');"
                " const d = c.getContext('2d').getImageData(0, 30, c.width, c.height - 30).data;"
                " for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; }"
            )
            await tab.wait_for_function(drawn, timeout=5000)
            await tab.select_option("#window", "10")
            await asyncio.sleep(0.2)
            assert await tab.evaluate(drawn)
            await keep_screenshot(tab, "engineering")
        finally:
            await tab.goto("about:blank")


async def test_the_scope_video_plays_and_a_snapshot_with_a_note_from_the_page_is_recorded(
    tab: Page, tmp_path: Path
) -> None:
    async with ready_rig_with_camera(tmp_path) as rig:
        assert (await rig.command({"op": "procedure.start", "ref": "console-1"}))["ok"]
        async with console_page(tab, rig, "video-and-snapshot") as page:
            await page.wait_for_function(
                "() => { const v = document.getElementById('video');"
                " return !v.classList.contains('hidden') && v.width === 223 }",
                timeout=10000,
            )
            rig.drain_events()
            await page.fill("#note", "papilloma at 2 cm")
            await page.click("#snapshot")
            noted = await rig.next_event(lambda e: e.get("kind") == "snapshot", 10.0)
            await page.keyboard.press("n")  # the one-touch "empty duct"
            empty = await rig.next_event(lambda e: e.get("kind") == "snapshot", 10.0)
    assert (noted["note"], empty["note"]) == ("papilloma at 2 cm", "empty duct")
    for event in (noted, empty):
        assert event["procedure"] is not None
        png = tmp_path / "run" / event["path"]
        picture = cv2.imread(str(png))  # the view: the field's square (docs/camera.md)
        assert picture is not None and picture.shape[:2] == (223, 223)
        raw = cv2.imread(str(png.with_suffix(".raw.png")))  # and the frame as captured
        assert raw is not None and raw.shape[:2] == (240, 320)
        assert json.loads(png.with_suffix(".json").read_text())["note"] == event["note"]


async def test_the_telemetry_benchmark_reports_figures(browser: Browser) -> None:
    profile = load_profile(DEFAULT_PROFILE)
    result = await run_telemetry_latency(DEFAULT_PROFILE, profile, 3.0, browser)
    assert result["samples"] >= 100  # 50 Hz for 3 s, less what a slow start-up misses
    for key in ("p50_ms", "p99_ms", "max_ms"):
        assert isinstance(result[key], float) and result[key] >= 0, key
