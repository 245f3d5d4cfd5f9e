"""The event journal (issue 7, item 3): what the API published survives the daemon's death.

The real rig: Mosquitto, the simulator and the daemon as processes. The test hears the events
topic from the daemon's first event on, makes the rig produce every ordinary kind (commands
accepted, refused and denied, transitions, stops, an e-stop, a reset), SIGKILLs the daemon, and
opens its journal: every event heard over MQTT is there, under the same seq, with the same body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from drivers.transport.mqtt import JsonObject
from rig.events.journal import JOURNAL_FILE
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


async def _heard_until(rig: RigUnderTest, heard: dict[int, bytes], op: str) -> list[JsonObject]:
    """Collect published events (seq -> payload) until the command audit of `op` arrives."""
    assert rig.events is not None
    events: list[JsonObject] = []
    async with asyncio.timeout(10.0):
        while True:
            payload = (await rig.events.get()).payload
            assert isinstance(payload, bytes)
            event: JsonObject = json.loads(payload)
            heard[event["seq"]] = payload
            events.append(event)
            if event["kind"] == "command" and event["op"] == op:
                return events


def _journaled(path: Path) -> dict[int, bytes]:
    """The journal's rows as the record will read them: seq -> the event's JSON text."""
    db = sqlite3.connect(path)
    try:
        return {seq: body.encode() for seq, body in db.execute("SELECT seq, body FROM events")}
    finally:
        db.close()


async def test_after_a_daemon_sigkill_the_journal_holds_every_event_the_api_had_published(
    rig: RigUnderTest,
) -> None:
    heard: dict[int, bytes] = {}
    assert (await rig.command({"op": "fluid.prime"}))["ok"]
    await rig.wait_until(lambda s: s["primed"] and s["mode"] == "stopped", 10.0)
    assert (await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0}))["ok"]
    refused = await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1000.0})
    assert not refused["ok"]
    assert (await rig.command({"op": "estop", "source": "journal test"}))["ok"]
    denied = await rig.command({"op": "fluid.prime"})
    assert not denied["ok"]
    assert (await rig.command({"op": "fault.reset"}))["ok"]
    events = await _heard_until(rig, heard, "fault.reset")
    assert rig.rig.daemon is not None
    rig.kill_daemon(signal.SIGKILL)
    await rig.rig.daemon.wait()

    journal = _journaled(rig.rig.run_dir / JOURNAL_FILE)
    missing = {seq: body for seq, body in heard.items() if journal.get(seq) != body}
    assert not missing, f"published but not journaled byte for byte: {missing}"
    seqs = [event["seq"] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "published in journal order"
    print(f"{len(events)} events published, all in the journal ({len(journal)} rows)")
    kinds = {event["kind"] for event in events}
    expected = {"transition", "self_test", "command", "command_rejected", "command_denied"}
    assert kinds >= expected | {"stop", "reset"}, kinds
    assert any(e["kind"] == "stop" and e["cause"] == "estop" and e["latched"] for e in events)
    assert any(e["kind"] == "transition" and e["to_state"] == "estop" for e in events)


async def test_every_command_the_daemon_answered_is_in_the_journal_after_a_sigkill(
    rig: RigUnderTest,
) -> None:
    """What is acknowledged is durable: an answer carries the command's `seq` in the journal and
    goes out only once the journal has committed it. Commands are sent back to back and the
    daemon is killed while more are in flight; every answered one must be on disk."""
    answered: list[int] = []
    enough = asyncio.Event()

    async def commander() -> None:
        for index in range(1000):
            op = "control.take" if index % 2 == 0 else "control.release"
            reply = await rig.command({"op": op}, timeout_s=5.0)
            assert reply["ok"], reply
            assert "journaled" not in reply, reply
            answered.append(int(reply["seq"]))
            if len(answered) >= 20:
                enough.set()

    task = asyncio.create_task(commander())
    async with asyncio.timeout(30.0):
        await enough.wait()
    assert rig.rig.daemon is not None
    rig.kill_daemon(signal.SIGKILL)
    await rig.rig.daemon.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError, AssertionError):
        await task
    assert len(answered) >= 20, answered
    journal = _journaled(rig.rig.run_dir / JOURNAL_FILE)
    lost = [seq for seq in answered if seq not in journal]
    assert not lost, f"{len(lost)} of {len(answered)} answered commands not in the journal"
    for seq in answered[-3:]:
        assert json.loads(journal[seq])["kind"] == "command"
