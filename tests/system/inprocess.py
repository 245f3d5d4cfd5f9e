"""The simulated rig in the test's own process: the emulators on real pseudo-terminals (on their
own thread and event loop, as in `rig sim` they have their own process), the daemon talking to
them over the real wire and to a real Mosquitto, on the test's event loop.

For faults that must be injected where only code can reach: an exception inside the daemon, a
reply damaged on the wire at an exact command. The test drives the daemon through its command
handler (the MQTT path is proven by the subprocess rig in harness.py) and watches the emulated
devices' ground truth directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from drivers.sim.camera.stream import parse_camera
from drivers.sim.ne1000_device import ReplyFault
from drivers.sim.rig_sim import RigSimulator, SimSettings
from rig.api.roles import Role
from rig.broker import PrivateBroker
from rig.config import DEFAULT_PROFILE, RigProfile, load_profile
from rig.daemon import BrokerAddress, RigDaemon
from rig.events.journal import JOURNAL_FILE
from rig.fluid.events import StopEvent
from rig.launcher import sim_baudrates, sim_camera_args, simulated_port
from rig.safety.states import RigState

LOOP_STALL_LIMIT_MS = 1000.0
BOARD_WATCHDOG_MS = 1000
"""The daemon shares its process (and the GIL) with the simulator and the test here: a loaded
test machine must not make the loop-stall guard or the board's heartbeat watchdog (each tested
on its own elsewhere, with the profile's own limits) cry wolf."""
SIM_START_TIMEOUT_S = 10.0
SIM_CALL_TIMEOUT_S = 5.0


class _SimulatorThread:
    """The simulator on its own thread and event loop; `call` runs a function on that loop."""

    def __init__(self, settings: SimSettings, before: Callable[[RigSimulator], None] | None):
        self._settings = settings
        self._before = before
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.sim: RigSimulator | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        try:
            async with RigSimulator(self._settings) as sim:
                if self._before is not None:
                    self._before(sim)
                self.sim, self._loop, self._stop = sim, asyncio.get_running_loop(), asyncio.Event()
                physics = asyncio.create_task(sim.run())
                self._ready.set()
                await self._stop.wait()
                physics.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await physics
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def start(self) -> RigSimulator:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, SIM_START_TIMEOUT_S)
        if self.sim is None:
            raise RuntimeError(f"the simulator did not start: {self.error!r}")
        return self.sim

    async def call(self, function: Callable[[], object]) -> None:
        assert self._loop is not None
        done = asyncio.run_coroutine_threadsafe(_call(function), self._loop)
        # Bounded: a simulator loop that never runs the call must fail the test, not hang it.
        async with asyncio.timeout(SIM_CALL_TIMEOUT_S):
            await asyncio.wrap_future(done)

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, SIM_START_TIMEOUT_S)


async def _call(function: Callable[[], object]) -> None:
    function()


@dataclass
class InProcessRig:
    sim: RigSimulator
    """The simulator's state may be read from here; change it through `on_sim`."""
    daemon: RigDaemon
    run: asyncio.Task[None]
    _sim_thread: _SimulatorThread
    broker: PrivateBroker
    """The daemon's broker (no log-in): a test may listen to the API on it."""
    stops: list[StopEvent] = field(default_factory=list)

    async def on_sim(self, function: Callable[[], object]) -> None:
        """Run `function` on the simulator's event loop (a fault injection, a cable pulled)."""
        await self._sim_thread.call(function)

    async def arm_reply_fault(self, command: str, kind: ReplyFault) -> None:
        """The next reply of the emulated pump to `command` is damaged (once)."""
        faults = self.sim.pump.reply_faults
        await self.on_sim(functools.partial(faults.__setitem__, command, kind))

    async def command(self, request: dict[str, object]) -> dict[str, object]:
        payload = json.dumps(request).encode()
        return await self.daemon.dispatcher.handle(
            payload, role=Role.ENGINEER, client="inprocess-test"
        )

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
    devices = profile.devices
    board = devices.board.model_copy(update={"watchdog_timeout_ms": BOARD_WATCHDOG_MS})
    return profile.model_copy(
        update={
            "fluid": profile.fluid.model_copy(
                update={"loop_stall_timeout_ms": LOOP_STALL_LIMIT_MS}
            ),
            "devices": devices.model_copy(update={"board": board}),
        }
    )


@contextlib.asynccontextmanager
async def inprocess_rig(
    tmp_path: Path,
    *,
    before_daemon: Callable[[RigSimulator], None] | None = None,
    profile: Callable[[RigProfile], RigProfile] | None = None,
) -> AsyncIterator[InProcessRig]:
    """`profile`: changes to the simulator profile this rig runs (a shorter limit, say)."""
    with _gc_frozen():
        async with _inprocess_rig(tmp_path, before_daemon, profile) as rig:
            yield rig


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """The whole test session's objects out of the collector's sight while the rig runs.

    Here the simulator, the daemon and pytest share one process and one GIL. By the time the
    system tests run, the session holds every earlier test's objects, and a full collection
    over them stops every thread for longer than the board's 20 ms sample-gap tolerance: the
    simulated board then misses samples a real one would have sent, and the rig rightly
    latches a fault the hardware would never cause. Frozen objects are not scanned; what the
    rig itself allocates still is."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.asynccontextmanager
async def _inprocess_rig(
    tmp_path: Path,
    before_daemon: Callable[[RigSimulator], None] | None,
    change_profile: Callable[[RigProfile], RigProfile] | None,
) -> AsyncIterator[InProcessRig]:
    profile = _profile()
    if change_profile is not None:
        profile = change_profile(profile)
    sim_cfg = profile.simulator
    assert sim_cfg is not None
    settings = SimSettings(
        link_dir=tmp_path / "dev",
        baudrates=sim_baudrates(profile),
        pump_address=profile.devices.pump.address,
        syringe_diameter_mm=profile.syringe.inner_diameter_mm,
        pressure_noise_mmhg=sim_cfg.pressure_noise_mmhg,
        seed=sim_cfg.seed,
        camera=next(
            (parse_camera(arg, sim_cfg.seed) for arg in sim_camera_args(profile)[1:]), None
        ),
    )
    sim_thread = _SimulatorThread(settings, before_daemon)
    async with PrivateBroker(tmp_path / "broker") as broker:
        sim = await sim_thread.start()
        daemon = RigDaemon(
            profile,
            {
                name: simulated_port(name, section, settings.link_dir)
                for name, section in profile.devices.sections().items()
            },
            BrokerAddress(broker.host, broker.port),
            journal_path=tmp_path / JOURNAL_FILE,
        )
        run = asyncio.create_task(daemon.run())
        rig = InProcessRig(sim, daemon, run, sim_thread, broker)
        daemon.interlock.add_stop_listener(rig.stops.append)
        try:
            yield rig
        finally:
            daemon.request_shutdown()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await asyncio.shield(run)
            run.cancel()
            # Bounded: a daemon that would not end when cancelled must fail the test that
            # started it, not hang the suite.
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(5.0):
                    await run
            async with asyncio.timeout(SIM_START_TIMEOUT_S + 5.0):
                await sim_thread.stop()
            assert run.done(), "the daemon did not end within 5 s of its cancellation"
