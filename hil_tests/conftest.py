"""Device conformance fixtures: the emulators by default, the real devices with --bench-profile.

Without ``--bench-profile`` every test gets a fresh `RigSimulator` (its own pseudo-terminals in a
temporary folder, its physics task running) and the device settings of ``config/sim.toml``.
With ``--bench-profile FILE`` the pump and board ports are resolved from that profile (path or
usb forms; a sim form is a usage error) and the same tests talk to the real devices.

Fixtures:

- `target`: where the devices are (`Target`), and, on the emulator only, the simulator itself
  for assertions only its device models can make;
- `board`: a connected `IoBoard`; on teardown its relay is opened and the link closed;
- `pump_power`: the board's relay closed after a cold power cycle of the pump, with heartbeats
  running (the pump is powered through that relay, on the bench as in the simulator);
- `make_pump` / `pump`: connected `Ne1000Pump` objects with the profile's settings (safe mode on);
  on teardown each is sent a stop and closed, before the relay opens.

Markers: ``emulator_only(reason)`` and ``hardware_only(reason)`` skip a test on the other kind
of target, with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drivers.clock import REAL_CLOCK
from drivers.ioboard.driver import IoBoard
from drivers.ne1000.driver import Ne1000Pump, PumpAlarmError, PumpError
from drivers.sim.rig_sim import RigSimulator, SimSettings
from drivers.transport.discovery import PortResolutionError, list_serial_ports, resolve_port
from drivers.transport.serial import LinkClosedError
from rig.config import DEFAULT_PROFILE, ProfileError, RigProfile, load_profile
from rig.launcher import sim_baudrates

log = logging.getLogger(__name__)

BENCH_PUMP_OFF_S = 1.0
"""How long the relay stays open for a cold power cycle of a real pump."""
"""How long a real pump gets to boot after its relay closes (``--pump-boot-s``)."""
SIM_POWER_TIMEOUT_S = 1.0
"""The emulated pump follows the relay at the next physics step (about 1 ms); this is a bound."""


@dataclass(frozen=True)
class BenchPorts:
    profile: RigProfile
    pump_port: str
    board_port: str


_BENCH_KEY = pytest.StashKey[BenchPorts | None]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator_only(reason): hil test that needs the emulator (skipped on a bench)"
    )
    config.addinivalue_line(
        "markers", "hardware_only(reason): hil test that needs real devices (skipped on emulators)"
    )
    path: Path | None = config.getoption("--bench-profile", default=None)
    config.stash[_BENCH_KEY] = None if path is None else _resolve_bench(path)


def _resolve_bench(path: Path) -> BenchPorts:
    """The profile and the device paths to open; a usage error (before any test) if not usable."""
    try:
        profile = load_profile(path)
    except ProfileError as exc:
        raise pytest.UsageError(f"--bench-profile {path}:\n{exc}") from None
    except OSError as exc:
        raise pytest.UsageError(f"--bench-profile {path}: cannot read it ({exc})") from None
    attached = list_serial_ports()
    resolved: dict[str, str] = {}
    for name in ("pump", "board"):
        spec = getattr(profile.devices, name).port
        try:
            resolved[name] = resolve_port(spec, attached)
        except PortResolutionError as exc:
            raise pytest.UsageError(
                f"--bench-profile {path}: devices.{name}.port: {exc} "
                "(the hil tests run against the emulators when --bench-profile is not given)"
            ) from None
    return BenchPorts(profile, resolved["pump"], resolved["board"])


def pytest_runtest_setup(item: pytest.Item) -> None:
    simulated = item.config.stash[_BENCH_KEY] is None
    for name, skip in (("emulator_only", not simulated), ("hardware_only", simulated)):
        marker = item.get_closest_marker(name)
        if marker is not None and skip:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else name)
            pytest.skip(f"{name}: {reason}")


# --------------------------------------------------------------------------------------------
# The target
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The devices under test: emulated (`simulated`) or real, and how to reach them."""

    simulated: bool
    pump_port: str
    board_port: str
    profile: RigProfile
    """Device settings (baud rates, pump safe mode, watchdog): the bench profile, or sim.toml."""
    pump_boot_s: float
    rig_sim: RigSimulator | None = None

    @property
    def sim(self) -> RigSimulator:
        """The simulator, for assertions only the emulator can make (device-model state)."""
        if self.rig_sim is None:
            raise RuntimeError("Target.sim: real hardware has no simulator; check `simulated`")
        return self.rig_sim

    @property
    def board_clock_is_host_clock(self) -> bool:
        """True on the emulator: board timestamps are this machine's CLOCK_MONOTONIC."""
        return self.simulated

    async def wait_pump_power(self, powered: bool) -> None:
        """After the relay moved: wait until the pump has lost (or regained) its power.

        The emulated pump follows the relay at the next physics step, which the model shows; a
        real pump gets fixed times (it cannot tell us while it is off or booting).
        """
        if self.rig_sim is None:
            await asyncio.sleep(self.pump_boot_s if powered else BENCH_PUMP_OFF_S)
            return
        pump_model = self.rig_sim.pump
        async with asyncio.timeout(SIM_POWER_TIMEOUT_S):
            # Polling: nothing signals a device model's power state.
            while pump_model.powered != powered:  # noqa: ASYNC110
                await asyncio.sleep(0.001)


@pytest.fixture
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    bench = request.config.stash[_BENCH_KEY]
    if bench is not None:
        yield Target(
            simulated=False,
            pump_port=bench.pump_port,
            board_port=bench.board_port,
            profile=bench.profile,
            pump_boot_s=float(request.config.getoption("--pump-boot-s")),
        )
        return
    profile = load_profile(DEFAULT_PROFILE)
    sim_cfg = profile.simulator
    assert sim_cfg is not None, f"{DEFAULT_PROFILE} has no [simulator] section"
    pump_cfg = profile.devices.pump
    settings = SimSettings(
        link_dir=tmp_path / "links",
        baudrates=sim_baudrates(profile),
        pump_address=pump_cfg.address,
        syringe_diameter_mm=profile.syringe.inner_diameter_mm,
        pressure_noise_mmhg=sim_cfg.pressure_noise_mmhg,
        seed=sim_cfg.seed,
    )
    async with RigSimulator(settings) as sim:
        physics = asyncio.create_task(sim.run(), name="hil-sim-physics")
        try:
            yield Target(
                simulated=True,
                pump_port=str(sim.pump_port.path),
                board_port=str(sim.board_port.path),
                profile=profile,
                pump_boot_s=0.0,
                rig_sim=sim,
            )
        finally:
            physics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await physics


# --------------------------------------------------------------------------------------------
# The board
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def board(target: Target) -> AsyncIterator[IoBoard]:
    """A connected I/O board; teardown opens its relay and closes the link."""
    cfg = target.profile.devices.board
    io_board = IoBoard(target.board_port, baudrate=cfg.baudrate, clock=REAL_CLOCK)
    await io_board.connect()
    try:
        yield io_board
    finally:
        await open_relay(io_board)
        await io_board.close()


async def open_relay(io_board: IoBoard) -> None:
    """Open the pump relay, acknowledged if the link allows, at least queued otherwise."""
    try:
        await io_board.set_pump_relay(False)
    except Exception as exc:  # teardown: try the fault path, then report
        log.warning("opening the relay failed (%s); sending it without waiting", exc)
        with contextlib.suppress(LinkClosedError):
            io_board.open_pump_relay_nowait()


class Heartbeats:
    """Send HEARTBEAT every `period_s` while running; `last_tx_s` is the last one's tx-done time.

    Used as ``async with Heartbeats(board, 0.05) as beats: ...``; leaving stops the heartbeats
    (after that the board's watchdog runs out unless someone else feeds it).
    """

    def __init__(self, io_board: IoBoard, period_s: float) -> None:
        self._board = io_board
        self.period_s = period_s
        self.last_tx_s: float | None = None
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeats:
        self._beat()
        self._task = asyncio.create_task(self._run(), name="hil-heartbeats")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _beat(self) -> None:
        done_s = self._board.heartbeat_nowait()
        if done_s is None:
            raise AssertionError("heartbeat held back behind a full window: the board stalled")
        self.last_tx_s = done_s
        self.sent += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            self._beat()


@pytest.fixture
async def pump_power(target: Target, board: IoBoard) -> AsyncIterator[Heartbeats]:
    """The pump freshly powered through the board's relay, kept closed by heartbeats.

    A cold power cycle: relay open, the pump off, relay closed, the pump booted. So every pump
    test starts from a power-up, which is when the pump ignores its first command.
    """
    cfg = target.profile.devices.board
    await board.set_pump_relay(False)
    await target.wait_pump_power(False)
    await board.configure_watchdog(cfg.watchdog_timeout_ms)
    if (await board.status()).trips:
        await board.reset_trip()  # a trip latched before this test (the host is alive again)
    async with Heartbeats(board, cfg.heartbeat_period_ms / 1000.0) as beats:
        await board.set_pump_relay(True)
        await target.wait_pump_power(True)
        yield beats
    await open_relay(board)


PumpFactory = Callable[..., Awaitable[Ne1000Pump]]


@pytest.fixture
async def make_pump(target: Target, pump_power: Heartbeats) -> AsyncIterator[PumpFactory]:
    """Connect a pump with the profile's settings; keyword arguments override them.

    Teardown sends each pump a stop (again, after an alarm reply, which means "not acted on")
    and closes it, before `pump_power` opens the relay.
    """
    cfg = target.profile.devices.pump
    pumps: list[Ne1000Pump] = []

    async def connect(**overrides: Any) -> Ne1000Pump:
        settings: dict[str, Any] = {
            "baudrate": cfg.baudrate,
            "address": cfg.address,
            "safe_mode_timeout_s": cfg.safe_mode_timeout_s,
            "reply_timeout_s": cfg.reply_timeout_ms / 1000.0,
            "clock": REAL_CLOCK,
        }
        settings.update(overrides)
        new_pump = Ne1000Pump(target.pump_port, **settings)
        pumps.append(new_pump)
        await new_pump.connect()
        return new_pump

    try:
        yield connect
    finally:
        for each in pumps:
            await _stop_and_close(each)


async def _stop_and_close(each: Ne1000Pump) -> None:
    if each.link.is_open:
        for _ in range(2):
            try:
                await each.stop()
                break
            except PumpAlarmError:
                continue  # the alarm reply cleared the alarm; the stop was not acted on
            except (PumpError, LinkClosedError) as exc:
                log.warning("stop in teardown failed (%s); sending it without waiting", exc)
                with contextlib.suppress(LinkClosedError):
                    each.stop_nowait()
                    await asyncio.sleep(0.05)  # let the bytes leave before the port closes
                break
    await each.close()


@pytest.fixture
async def pump(make_pump: PumpFactory) -> Ne1000Pump:
    """A powered, connected pump with the profile's settings (safe mode on)."""
    return await make_pump()
