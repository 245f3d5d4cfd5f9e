"""`rig bench record-crash`: is what the daemon acknowledged still there after it was killed?

The real daemon on the simulator (`rig sim`'s processes). Each cycle: open a procedure (or find
it open after the last kill), prime if the restarted daemon has not, irrigate, and send commands
back to back (control take and release, flow changes, stops) while, at a random moment 0.2 to
2 s into the cycle, the daemon is SIGKILLed. Then restart it and wait until it is ready again.

- acknowledged: answers the daemon sent with `ok` and a journal `seq` (and without
  `journaled: false`), before the kill;
- lost: those whose seq is not in the journal after the restart as the same command (must be 0);
- recovery: from the restarted daemon's spawn to its first answer, and to the rig's state
  `ready` again (devices reconnected, the self-test passed). A killed daemon stops feeding the
  I/O board's watchdog, so the board cuts the pump's power and the restarted daemon finds that
  trip latched: as the operator would, the bench resets it as soon as the daemon reports it,
  and the time to ready includes that reset (the pump's power-up and the self-test);
- the procedure goes on across every kill: one procedure, `procedure_resumed` once per restart.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from drivers.transport.mqtt import JsonObject
from drivers.transport.tasks import cancel_and_wait
from rig.bench.session import BenchError, BenchSession, engineer_session, percentile
from rig.config import RigProfile
from rig.events.journal import JOURNAL_FILE
from rig.launcher import SimRig, start_sim_rig

READY_TIMEOUT_S = 30.0
KILL_AFTER_S = (0.2, 2.0)
PRIME_TIMEOUT_S = 30.0
RESET_EVERY_S = 1.0
"""A reset that found the pump still powering up is sent again after this long."""


async def run_record_crash(
    profile_path: Path, profile: RigProfile, cycles: int, progress: bool = False
) -> JsonObject:
    rig = await start_sim_rig(profile_path, profile)
    rng = random.Random(profile.simulator.seed if profile.simulator else 0)
    acknowledged: dict[int, str] = {}
    recovery_ms: list[float] = []
    answer_ms: list[float] = []
    try:
        async with engineer_session(rig) as session:
            await _until_ready(session)
            reply = await session.command({"op": "procedure.start", "ref": "record-crash"})
            if not reply.get("ok"):
                raise BenchError(f"procedure.start refused: {reply}")
            _acknowledge(acknowledged, "procedure.start", reply)
            procedure = reply["result"]["procedure"]["id"]
            for cycle in range(cycles):
                await _cycle(session, rig, rng, acknowledged)
                ready_ms, first_answer_ms = await _restart(session, rig)
                recovery_ms.append(ready_ms)
                answer_ms.append(first_answer_ms)
                state = await session.status()
                if (state.get("procedure") or {}).get("id") != procedure:
                    raise BenchError(
                        f"cycle {cycle + 1}: the procedure did not go on after the restart "
                        f"({state.get('procedure')}; logs in {rig.run_dir})"
                    )
                if progress and (cycle + 1) % 10 == 0:
                    print(
                        f"cycle {cycle + 1}/{cycles}: {len(acknowledged)} acknowledged, "
                        f"ready again in {ready_ms:.0f} ms",
                        flush=True,
                    )
            reply = await session.command({"op": "procedure.stop"})
            _acknowledge(acknowledged, "procedure.stop", reply)
    finally:
        await rig.stop()
    journal = _commands_in(rig.run_dir / JOURNAL_FILE)
    lost = sorted(seq for seq, op in acknowledged.items() if journal.get(seq) != op)
    resumed = _count_kind(rig.run_dir / JOURNAL_FILE, "procedure_resumed")
    return {
        "benchmark": "record-crash",
        "cycles": cycles,
        "acknowledged": len(acknowledged),
        "lost": len(lost),
        "lost_seqs": lost[:20],
        "procedure_resumed": resumed,
        "recovery_ms_p50": round(percentile(recovery_ms, 50), 1),
        "recovery_ms_p99": round(percentile(recovery_ms, 99), 1),
        "recovery_ms_max": round(max(recovery_ms), 1),
        "first_answer_ms_p99": round(percentile(answer_ms, 99), 1),
        "measured": "acknowledged = ok answers with a journal seq before a SIGKILL; recovery = "
        "the restarted daemon's spawn -> state ready (devices back, self-test passed)",
    }


async def _cycle(
    session: BenchSession, rig: SimRig, rng: random.Random, acknowledged: dict[int, str]
) -> None:
    await _primed(session, rig, acknowledged)
    commands: list[JsonObject] = [
        {"op": "fluid.irrigate", "flow_ml_min": 1.0},
        {"op": "control.take"},
        {"op": "fluid.irrigate", "flow_ml_min": 0.8},
        {"op": "control.release"},
        {"op": "fluid.stop"},
    ]

    async def commander() -> None:
        index = 0
        while True:
            command = commands[index % len(commands)]
            index += 1
            try:
                reply = await session.mqtt.request(session.commands, command, timeout_s=1.0)
            except TimeoutError:
                continue  # the daemon died with it in flight: never acknowledged
            _acknowledge(acknowledged, str(command["op"]), reply)

    task = asyncio.create_task(commander())
    await asyncio.sleep(rng.uniform(*KILL_AFTER_S))
    assert rig.daemon is not None
    rig.daemon.send_signal(signal.SIGKILL)
    await rig.daemon.wait()
    # Answers already on their way from the broker are acknowledgements too: take them in.
    await asyncio.sleep(0.2)
    await cancel_and_wait(task)


async def _primed(session: BenchSession, rig: SimRig, acknowledged: dict[int, str]) -> None:
    """Prime the line if the restarted daemon has not; a fault on the way (a sample late on a
    loaded machine) is reset and the prime asked again: this bench is about the record."""
    try:
        async with asyncio.timeout(PRIME_TIMEOUT_S):
            while True:
                state = await session.status()
                if state.get("primed") and state.get("mode") == "stopped":
                    return
                if state.get("state") == "fault":
                    await session.command({"op": "fault.reset"})
                    await session.until(lambda s: s["state"] in ("ready", "fault"))
                    continue
                if state.get("state") == "ready" and state.get("mode") == "stopped":
                    reply = await session.command({"op": "fluid.prime"})
                    _acknowledge(acknowledged, "fluid.prime", reply)
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(
            f"the line was not primed within {PRIME_TIMEOUT_S:g} s (logs in {rig.run_dir})"
        ) from None


def _acknowledge(acknowledged: dict[int, str], op: str, reply: JsonObject) -> None:
    if reply.get("ok") and "seq" in reply and reply.get("journaled", True):
        acknowledged[int(reply["seq"])] = op


async def _restart(session: BenchSession, rig: SimRig) -> tuple[float, float]:
    started = time.monotonic()
    await rig.start_daemon()
    first_answer: float | None = None
    reset_at = 0.0
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while True:
                state = await session.status()
                if state.get("state") is not None and first_answer is None:
                    first_answer = time.monotonic()
                if state.get("state") == "ready":
                    break
                if state.get("state") == "fault" and time.monotonic() - reset_at > RESET_EVERY_S:
                    # The board's watchdog trip the kill caused: the operator's reset.
                    reset_at = time.monotonic()
                    await session.command({"op": "fault.reset"})
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise BenchError(
            f"the restarted daemon was not ready within {READY_TIMEOUT_S:g} s "
            f"(logs in {rig.run_dir})"
        ) from None
    ready = time.monotonic()
    return (ready - started) * 1000.0, ((first_answer or ready) - started) * 1000.0


async def _until_ready(session: BenchSession) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        await session.until(lambda state: state["state"] == "ready")


def _commands_in(journal: Path) -> dict[int, str]:
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, body FROM events WHERE kind = 'command'").fetchall()
    finally:
        db.close()
    ops: dict[int, str] = {}
    for seq, body in rows:
        data: dict[str, Any] = json.loads(body)
        if data.get("ok"):
            ops[int(seq)] = str(data["op"])
    return ops


def _count_kind(journal: Path, kind: str) -> int:
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT count(*) FROM events WHERE kind = ?", (kind,)).fetchone()
    finally:
        db.close()
    return int(count)
