"""A journal that cannot be written is the journal's fault, not the rig's (issue 7, item 3).

The daemon starts with its journal's place taken by a directory: it reports a `journal_fault`
on the events topic, goes on publishing events from memory, and the rig self-tests and moves
fluid as ever (the safety functions do not depend on the record).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.events.journal import JOURNAL_FILE
from tests.system.inprocess import inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


async def test_an_unwritable_journal_is_reported_and_the_rig_runs_on(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).mkdir()
    async with inprocess_rig(tmp_path) as rig:
        assert rig.daemon.journal.fault is not None
        await rig.wait_ready()
        async with MqttEndpoint(rig.broker.host, rig.broker.port) as listener:
            events = await listener.subscribe(rig.daemon.api.topics.events)
            await rig.prime()
            kinds: list[str] = []
            async with asyncio.timeout(10.0):
                while "stop" not in kinds:
                    event: JsonObject = json.loads((await events.get()).payload)
                    kinds.append(event["kind"])
            assert "command" in kinds and "transition" in kinds, kinds
        # The fault was the daemon's first word, before this client listened: read it back.
        journal = rig.daemon.journal
        recorded = [json.loads(body) for _, body in await journal.read_after(0, limit=10_000)]
        faults = [e for e in recorded if e["kind"] == "journal_fault"]
        assert len(faults) == 1 and "cannot open the journal" in faults[0]["reason"], faults
        assert rig.daemon.interlock.latched is None
