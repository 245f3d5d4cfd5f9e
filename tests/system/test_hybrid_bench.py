"""A hybrid bench: `rig sim` with a real pump and the simulated board, as a bench engineer brings
a rig up one device at a time. The "real" pump is an NE-1000 emulator this test runs on its own
pseudo-terminal, apart from the rig's simulator, on a supply of its own (not the board's relay).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.sim.rig_sim import RigSimulator, SimSettings
from rig.config import DEFAULT_PROFILE, load_profile
from rig.launcher import sim_baudrates
from tests.support.rig_process import run_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(90)]


async def _until(predicate: Callable[[], bool], timeout_s: float, env: dict[str, str]) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():  # noqa: ASYNC110 - the emulator's state, polled
                await asyncio.sleep(0.02)
    except TimeoutError:
        # What the rig made of it (once, in CI under load, a prime never started the pump)
        _, out, err = await run_rig("status", "--json", env=env)
        raise AssertionError(f"not within {timeout_s} s; the rig's status:\n{out}{err}") from None


async def test_rig_sim_drives_a_real_pump_on_a_given_port_next_to_the_simulated_board(
    tmp_path: Path,
) -> None:
    profile = load_profile(DEFAULT_PROFILE)
    bench_pump = RigSimulator(
        SimSettings(
            link_dir=tmp_path / "bench",
            baudrates=sim_baudrates(profile),
            syringe_diameter_mm=profile.syringe.inner_diameter_mm,
        )
    )
    bench_pump.relay_welded = True  # its own supply: powered whatever any board does
    # What the bench pump was told. Polling `running` can miss a run: the board here measures the
    # simulator's line, not this pump's, so the rig stops the prime on an implausible pressure
    # within a second, and a starved test process reads that RUN and the STP in one go.
    commands: list[str] = []
    receive = bench_pump.pump.receive

    def receive_and_note(data: bytes, now_s: float) -> bytes:
        commands.append(data.decode("latin-1"))
        return receive(data, now_s)

    bench_pump.pump.receive = receive_and_note  # type: ignore[method-assign]
    env = dict(os.environ, RIG_RUNTIME_DIR=str(tmp_path / "runtime"))
    async with bench_pump:
        physics = asyncio.create_task(bench_pump.run())
        sim = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rig.cli.main",
            "sim",
            "--pump-port",
            str(tmp_path / "bench" / "pump"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        assert sim.stdout is not None
        transcript: list[str] = []
        try:
            async with asyncio.timeout(30):
                while (
                    not transcript
                    or transcript[-1].split()[1:2] != ["rig"]
                    or (transcript[-1].split()[2] in ("offline", "self_test"))
                ):
                    line = (await sim.stdout.readline()).decode()
                    assert line, "rig sim exited:\n" + "".join(transcript)
                    transcript.append(line)
            # The self-test silences the pump on purpose; a pump on its own supply is still
            # powered at the re-arm and says so with its safe-mode alarm: not a fault.
            assert transcript[-1].split()[2] == "ready", transcript
            # rig, broker, one line per device (pump, board, pedal, basket), then the warning
            devices = {line.split()[0]: line.split()[1:] for line in transcript[:7]}
            assert devices["pump"] == [str(tmp_path / "bench" / "pump"), "(REAL)"], transcript
            assert devices["board"][1] == "(simulated)", transcript
            assert "warning" in devices

            # The daemon connected to the bench pump and put it in the profile's safe mode.
            assert bench_pump.pump.safe_mode_timeout_s == profile.devices.pump.safe_mode_timeout_s
            commands.clear()  # the prime starts the pump; nothing before it did
            code, out, err = await run_rig("fluid", "prime", env=env)
            assert code == 0, out + err
            await _until(lambda: any("RUN" in c for c in commands), 5.0, env)
            code, out, err = await run_rig("fluid", "stop", env=env)
            assert code == 0, out + err
            await _until(lambda: not bench_pump.pump.running, 5.0, env)
            code, out, _ = await run_rig("simctl", "state", "--json", env=env)
            assert code == 0
            rig_sim_pump = json.loads(out)["result"]["pump"]
            assert rig_sim_pump["infused_ml"] == 0.0, "the simulator's own pump stayed idle"
        finally:
            sim.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                await sim.communicate()
            physics.cancel()
            await asyncio.gather(physics, return_exceptions=True)
