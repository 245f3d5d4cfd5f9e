"""The simulated rig in the test's own process: the emulators on real pseudo-terminals, the
daemon talking to them over the real wire and to a real Mosquitto, in one event loop.

For faults that must be injected where only code can reach: an exception inside the daemon, a
reply damaged on the wire at an exact command. The test drives the daemon through its command
handler (the MQTT path is proven by the subprocess rig in harness.py) and watches the emulated
devices' ground truth directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivers.sim.rig_sim import RigSimulator, SimSettings
from rig.api.roles import Role
from rig.broker import PrivateBroker
from rig.config import DEFAULT_PROFILE, RigProfile, load_profile
from rig.daemon import BrokerAddress, DevicePorts, RigDaemon
from rig.fluid.events import StopEvent
from rig.safety.states import RigState

LOOP_STALL_LIMIT_MS = 1000.0
"""The simulator shares the daemon's loop here: a loaded test machine must not make the
loop-stall guard (tested on its own elsewhere) cry wolf."""


@dataclass
class InProcessRig:
    sim: RigSimulator
    daemon: RigDaemon
    run: asyncio.Task[None]
    stops: list[StopEvent] = field(default_factory=list)

    async def command(self, request: dict[str, object]) -> dict[str, object]:
        return await self.daemon.handle_command(json.dumps(request).encode(), role=Role.ENGINEER)

    async def ok(self, request: dict[str, object]) -> dict[str, object]:
        reply = await self.command(request)
        assert reply["ok"], reply
        return reply

    def assert_alive(self) -> None:
        if self.run.done():
            raise AssertionError(f"the daemon ended: {self.run.exception()!r}")

    async def wait_for(
        self, predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = ""
    ) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    self.assert_alive()
                    await asyncio.sleep(0.01)
        except TimeoutError:
            latched = self.daemon.interlock.latched
            raise AssertionError(
                f"timed out waiting for {what or predicate}; state "
                f"{self.daemon.interlock.state}, latched {latched}"
            ) from None

    async def wait_ready(self, timeout_s: float = 20.0) -> None:
        await self.wait_for(
            lambda: self.daemon.interlock.state is RigState.READY, timeout_s, "state ready"
        )

    async def reset_and_wait_ready(self) -> None:
        await self.ok({"op": "fault.reset"})
        await self.wait_ready()

    async def prime(self) -> None:
        await self.ok({"op": "fluid.prime"})
        await self.wait_for(
            lambda: self.daemon.controller.primed and not self.daemon.controller.pump_running,
            15.0,
            "primed",
        )
        await self.wait_for(lambda: not self.sim.pump.running, 2.0, "the pump stopped")

    async def irrigating(self, flow_ml_min: float = 1.0) -> None:
        await self.ok({"op": "fluid.irrigate", "flow_ml_min": flow_ml_min})
        await self.wait_for(lambda: self.daemon.controller.pump_running, 3.0, "pump running")
        await self.wait_for(lambda: self.sim.pump.running, 2.0, "the emulated pump runs")


def _profile() -> RigProfile:
    profile = load_profile(DEFAULT_PROFILE)
    return profile.model_copy(
        update={
            "fluid": profile.fluid.model_copy(update={"loop_stall_timeout_ms": LOOP_STALL_LIMIT_MS})
        }
    )


@contextlib.asynccontextmanager
async def inprocess_rig(
    tmp_path: Path, *, before_daemon: Callable[[RigSimulator], None] | None = None
) -> AsyncIterator[InProcessRig]:
    profile = _profile()
    sim_cfg = profile.simulator
    assert sim_cfg is not None
    settings = SimSettings(
        link_dir=tmp_path / "dev",
        pump_baudrate=profile.devices.pump.baudrate,
        board_baudrate=profile.devices.board.baudrate,
        pump_address=profile.devices.pump.address,
        syringe_diameter_mm=profile.syringe.inner_diameter_mm,
        pressure_noise_mmhg=sim_cfg.pressure_noise_mmhg,
        seed=sim_cfg.seed,
    )
    async with PrivateBroker(tmp_path / "broker") as broker, RigSimulator(settings) as sim:
        physics = asyncio.create_task(sim.run())
        if before_daemon is not None:
            before_daemon(sim)
        daemon = RigDaemon(
            profile,
            DevicePorts(str(sim.pump_port.path), str(sim.board_port.path)),
            BrokerAddress(broker.host, broker.port),
        )
        run = asyncio.create_task(daemon.run())
        rig = InProcessRig(sim, daemon, run)
        daemon.interlock.add_stop_listener(rig.stops.append)
        try:
            yield rig
        finally:
            daemon.request_shutdown()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await asyncio.shield(run)
            run.cancel()
            physics.cancel()
            with contextlib.suppress(BaseException):
                await run
            with contextlib.suppress(BaseException):
                await physics
