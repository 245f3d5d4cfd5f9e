"""What the daemon acknowledges is durable: a command's answer waits for the journal to commit
the command (and so everything recorded before it). The disk is made slow here by holding the
journal's writer; the daemon's dispatcher and journal are the real ones."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from rig.api.roles import Role
from rig.api.service import BrokerAddress
from rig.config import DEFAULT_PROFILE, load_profile
from rig.daemon import RigDaemon
from rig.events.models import EventBase
from tests.support.ports import unused_ports


def _daemon(tmp_path: Path) -> RigDaemon:
    profile = load_profile(DEFAULT_PROFILE)
    return RigDaemon(
        profile,
        unused_ports(profile),
        BrokerAddress("127.0.0.1", 1),
        journal_path=tmp_path / "journal.sqlite",
    )


def _rows(path: Path) -> dict[int, str]:
    db = sqlite3.connect(path)
    try:
        return {seq: kind for seq, kind in db.execute("SELECT seq, kind FROM events")}
    finally:
        db.close()


def _hold_the_writer(daemon: RigDaemon, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A slow disk: the journal's writer waits (at most 10 s) until the event returned is set."""
    disk = threading.Event()
    write = daemon.journal._write

    def held_write(batch: list[EventBase]) -> list[tuple[int, bytes]]:
        disk.wait(10.0)
        return write(batch)

    monkeypatch.setattr(daemon.journal, "_write", held_write)
    return disk


async def test_an_answer_waits_until_the_journal_holds_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    journal = daemon.journal
    journal.start()
    disk = _hold_the_writer(daemon, monkeypatch)
    try:
        answer = asyncio.create_task(
            daemon.dispatcher.handle(b'{"op": "control.take"}', role=Role.ENGINEER, client="c1")
        )
        await asyncio.sleep(0.3)
        assert not answer.done(), "answered before the journal held the command"
        disk.set()
        reply = await asyncio.wait_for(answer, 5.0)
        assert reply["ok"] and "journaled" not in reply, reply
        assert _rows(tmp_path / "journal.sqlite")[int(reply["seq"])] == "command"
    finally:
        disk.set()
        await asyncio.to_thread(journal.close)


async def test_an_answer_the_journal_could_not_commit_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = _daemon(tmp_path)
    journal = daemon.journal
    journal.start()
    disk = _hold_the_writer(daemon, monkeypatch)
    monkeypatch.setattr("rig.daemon.DURABLE_ANSWER_TIMEOUT_S", 0.2)
    try:
        reply = await daemon.dispatcher.handle(
            b'{"op": "control.take"}', role=Role.ENGINEER, client="c1"
        )
        assert reply["ok"] and reply["journaled"] is False, reply
    finally:
        disk.set()
        await asyncio.to_thread(journal.close)
