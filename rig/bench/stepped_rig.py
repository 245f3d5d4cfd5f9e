"""The rig's fluid slice on a stepped clock: faster than real time, byte for byte.

The rig's own FluidController and Interlock run against the simulator's physics (FluidWorld),
its NE-1000 pump emulator and its I/O board emulator. The emulators speak the real protocols:
pump commands are encoded by the host's NE-1000 codec and parsed by the emulator, and pressure
reaches the controller as the board emulator's sample frames decoded by the host's board codec
(noise, quantisation to the board's 0.01 mmHg counts, the zero the board took). Only the
pseudo-terminal between them is replaced by a function call, so that one simulated second costs
a fraction of a real one and time moves only when the harness steps it.

This is how the envelope benchmark and its test walk the whole operating envelope (tens of
simulated minutes) in a minute. Link behaviour (timeouts, CRC errors, reconnection) is the
business of the tests over real ptys, not of this harness.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from drivers.clock import ManualClock
from drivers.ioboard.codec import BoardEvent as BoardEventMessage
from drivers.ioboard.codec import (
    BoardHostCodec,
    ConfigWatchdog,
    EventKind,
    Heartbeat,
    HostMessage,
    Nack,
    PressureSample,
    ResetTrip,
    ResistanceTrip,
    SetCutoff,
    SetFlow,
    SetLight,
    SetPumpRelay,
    ZeroPressure,
)
from drivers.ioboard.driver import BoardCommandRejectedError
from drivers.ne1000 import Direction, Ne1000Codec
from drivers.ne1000.codec import (
    AlarmReply,
    ClearDispensed,
    Command,
    DispensedReply,
    ErrorReply,
    GetDispensed,
    PumpStatus,
    Query,
    Reply,
    Run,
    SetDiameter,
    SetDirection,
    SetRate,
    SetVolume,
    Stop,
)
from drivers.sim.ioboard_device import IoBoardDevice
from drivers.sim.ne1000_device import Ne1000Device
from drivers.sim.scenarios import Scenario
from drivers.sim.world import FluidWorld, FluidWorldParams
from drivers.transport.serial import wire_time_s
from rig.config import RigProfile
from rig.devices.board import board_resistance_stop
from rig.fluid.controller import SAMPLE_PERIOD_S, FluidController, PumpReading
from rig.fluid.events import StopCause, StopEvent
from rig.safety.interlock import Interlock, PumpFaultError

ACTUATION_EVERY_SAMPLES = 10
"""The daemon's actuation task ticks every 20 ms (rig.fluid.controller.ACTUATION_TICK_S)."""
ZERO_SETTLE_S = 0.5
"""Samples at rest before the board takes its zero, as the self-test lets the line settle."""


class PumpWire:
    """The pump's side of the interlock (rig.safety.interlock.PumpActuator) over the NE-1000
    codec, into the emulator: each command is one exchange, and the reply is read before the
    next (the manual's rule). An error or alarm reply raises PumpFaultError, as the daemon's
    driver adapter does."""

    def __init__(self, device: Ne1000Device, clock: ManualClock, *, baudrate: int) -> None:
        self._device = device
        self._clock = clock
        self._baudrate = baudrate
        self._codec = Ne1000Codec(device.address)
        # The daemon's pump runs in safe mode (mandatory in this product): its stop frame is the
        # safe-mode one, 9 bytes on the wire where the basic-mode exchange here sends 5.
        self._stop_frame_bytes = len(Ne1000Codec(device.address, safe_mode=True).encode(Stop()))
        # The pump ignores the first command after power-up and then reports alarm R.
        self._exchange_frames(Query())
        self._exchange_frames(Query())

    def _exchange_frames(self, command: Command) -> list[Reply]:
        replies: list[Reply] = []
        for frame in self._codec.encode_frames(command):
            self._codec.feed(self._device.receive(frame, self._clock.monotonic()))
            replies.extend(self._codec.replies())
        return replies

    def _exchange(self, command: Command) -> Reply:
        replies = self._exchange_frames(command)
        if not replies:
            raise PumpFaultError(f"no reply to {command}")
        for reply in replies:
            if isinstance(reply, AlarmReply):
                raise PumpFaultError(f"alarm {reply.alarm.name} in reply to {command}")
            if isinstance(reply, ErrorReply):
                raise PumpFaultError(f"error {reply.code} in reply to {command}")
        return replies[-1]

    def stop_nowait(self) -> float:
        self._exchange(Stop())
        return self._clock.monotonic() + wire_time_s(self._stop_frame_bytes, self._baudrate)

    async def stop(self) -> None:
        self._exchange(Stop())

    async def set_direction(self, direction: Direction) -> None:
        self._exchange(SetDirection(direction))

    async def set_rate(self, ml_min: float) -> None:
        self._exchange(SetRate(ml_min))

    async def set_volume_ul(self, ul: float) -> None:
        self._exchange(SetVolume(ul))

    async def clear_dispensed(self, direction: Direction) -> None:
        self._exchange(ClearDispensed(direction))

    async def run(self) -> None:
        self._exchange(Run())

    async def set_diameter(self, mm: float) -> None:
        self._exchange(SetDiameter(mm))

    def stop_from_thread(self) -> None:
        self.stop_nowait()

    async def read(self) -> PumpReading:
        reply = self._exchange(GetDispensed())
        if not isinstance(reply, DispensedReply):
            raise PumpFaultError(f"expected a dispensed reply, got {reply}")
        return PumpReading(reply.infused_ml, reply.status is PumpStatus.INFUSING)


class BoardWire:
    """The board's side of the interlock (rig.safety.interlock.RelayActuator) over the board
    codec, into the emulator."""

    def __init__(self, device: IoBoardDevice, clock: ManualClock) -> None:
        self._device = device
        self._clock = clock
        self.codec = BoardHostCodec()
        self.codec.feed(device.receive(self.codec.probe(), clock.monotonic()))
        list(self.codec.events())

    def send(self, *messages: HostMessage) -> None:
        now_s = self._clock.monotonic()
        data = self.codec.encode(*messages, now_s=now_s)
        self.codec.feed(self._device.receive(data, now_s), now_s)
        # The answer is the acknowledgement (and a NACK if the board refused): read it now, so
        # the window of unacknowledged frames never fills.
        for frame in self.codec.events():
            for message in frame.messages:
                if isinstance(message, Nack):
                    raise BoardCommandRejectedError(messages[0], message)

    def open_pump_relay_nowait(self) -> float:
        self.send(SetPumpRelay(False))
        return self._clock.monotonic()

    async def set_pump_relay(self, closed: bool) -> None:
        self.send(SetPumpRelay(closed))

    async def reset_trip(self) -> None:
        self.send(ResetTrip())

    async def configure_watchdog(self, timeout_ms: int) -> None:
        self.send(ConfigWatchdog(timeout_ms))

    async def set_cutoff(self, mmhg: float) -> None:
        self.send(SetCutoff(mmhg))

    async def zero_pressure(self) -> None:
        self.send(ZeroPressure())

    async def set_light(self, permille: int) -> None:
        self.send(SetLight(permille))

    def set_flow_nowait(self, message: SetFlow) -> float | None:
        self.send(message)
        return self._clock.monotonic()


class SteppedRig:
    """One rig, fresh from its self-test: zeroed at rest, pump powered, line primed."""

    def __init__(
        self,
        profile: RigProfile,
        *,
        seed: int = 0,
        start_s: float = 100.0,
        world: FluidWorldParams | None = None,
    ) -> None:
        self.profile = profile
        self.clock = ManualClock(start_s)
        self.world = FluidWorld(world or FluidWorldParams(), start_time_s=start_s)
        noise = profile.simulator.pressure_noise_mmhg if profile.simulator else 0.2
        self.board_device = IoBoardDevice(noise_mmhg=noise, seed=seed)
        pump_cfg = profile.devices.pump
        self.pump_device = Ne1000Device(
            address=pump_cfg.address, syringe_diameter_mm=profile.syringe.inner_diameter_mm
        )
        self.board = BoardWire(self.board_device, self.clock)
        self.scenario: Scenario | None = None
        self._scenario_started_s = 0.0
        self._samples = 0
        self._on_sample: Callable[[int, float, float, int], None] = _ignore_sample
        self.on_step: Callable[[SteppedRig], None] | None = None
        self.resistance_trips: list[ResistanceTrip] = []
        """The board's resistance-stop reports, in order, as the board sent them."""
        self._host_blind = False
        self._unheard: list[ResistanceTrip] = []
        # The self-test's part that matters here: the zero taken at rest with the relay open,
        # the cut-off set, then the pump's power on (it boots, ignores the first command and
        # reports alarm R, which PumpWire consumes) and the rig ready.
        board_cfg = profile.devices.board
        self._heartbeat_every = max(
            1, round(board_cfg.heartbeat_period_ms / 1000 / SAMPLE_PERIOD_S)
        )
        self.board.send(ConfigWatchdog(board_cfg.watchdog_timeout_ms))
        self.board.send(SetCutoff(profile.limits.board_cutoff_mmhg))
        self._step_samples(round(ZERO_SETTLE_S / SAMPLE_PERIOD_S))
        self.board.send(ZeroPressure())
        self.board.send(SetPumpRelay(True))
        self._step_samples(1)
        self.pump = PumpWire(self.pump_device, self.clock, baudrate=pump_cfg.baudrate)
        self.interlock = Interlock(self.pump, self.board)
        _now(
            self.interlock.configure_board(
                watchdog_timeout_ms=board_cfg.watchdog_timeout_ms,
                cutoff_mmhg=profile.limits.board_cutoff_mmhg,
                resistance_stop=board_resistance_stop(board_cfg, profile.fluid),
            )
        )
        self.controller = FluidController(profile.limits, profile.fluid, self.interlock, self.clock)
        self._on_sample = self.controller.on_sample
        self.stops: list[StopEvent] = []
        self.interlock.add_stop_listener(self.stops.append)
        self.interlock.self_test_passed = True
        self.interlock.set_links(pump=True, board=True)
        self.controller.primed = True
        self._step_samples(ACTUATION_EVERY_SAMPLES)

    # -- the world --------------------------------------------------------------------------

    def start_scenario(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._scenario_started_s = self.clock.monotonic()

    def clear_scenario(self) -> None:
        self.scenario = None
        self.world.clear()

    # -- the host ---------------------------------------------------------------------------

    def blind_host(self) -> None:
        """From now on the host's fluid loop sees no sample and does not actuate, while its
        heartbeat runs on: supervision disabled, or a loop stuck where the heartbeat is not.
        Only the board can stop the pump (rig bench board-stop)."""
        self._host_blind = True

    def restore_host(self) -> None:
        """The host sees again, and hears what the board reported meanwhile."""
        self._host_blind = False
        unheard, self._unheard = self._unheard, []
        for trip in unheard:
            self._host_hears(trip)

    # -- stepping ---------------------------------------------------------------------------

    async def run_for(self, seconds: float) -> None:
        """Advance sample by sample; the controller actuates every 20 ms, as in the daemon."""
        for _ in range(round(seconds / SAMPLE_PERIOD_S)):
            self._step_samples(1)
            if self._samples % ACTUATION_EVERY_SAMPLES == 0 and not self._host_blind:
                await self.controller.actuate_once(self.pump.read)

    async def run_until(self, done: Callable[[], bool], timeout_s: float) -> float:
        """Step until `done()`; return the simulated seconds it took (or `timeout_s`)."""
        steps = round(timeout_s / SAMPLE_PERIOD_S)
        for index in range(steps):
            if done():
                return index * SAMPLE_PERIOD_S
            await self.run_for(SAMPLE_PERIOD_S)
        return timeout_s

    def _step_samples(self, n: int) -> None:
        for _ in range(n):
            self.clock.advance(SAMPLE_PERIOD_S)
            now_s = self.clock.monotonic()
            self._samples += 1
            if self._samples % self._heartbeat_every == 0:
                self.board.send(Heartbeat())
            if self.scenario is not None:
                self.scenario.apply(self.world, now_s - self._scenario_started_s)
            powered = self.board_device.relay_closed
            if powered and not self.pump_device.powered:
                self.pump_device.power_on(now_s)
            elif not powered and self.pump_device.powered:
                self.pump_device.power_off()
            self.pump_device.advance(SAMPLE_PERIOD_S, self.world.line_pressure_mmhg)
            self.world.set_pump_flow(self.pump_device.flow_ml_min)
            self.world.step(SAMPLE_PERIOD_S)
            data = self.board_device.advance(now_s, self.world.line_pressure_mmhg)
            self.board.codec.feed(data, now_s)
            for frame in self.board.codec.events():
                for message in frame.messages:
                    self._on_board_message(message, now_s)
            if self.on_step is not None:
                self.on_step(self)

    def _on_board_message(self, message: object, now_s: float) -> None:
        if isinstance(message, ResistanceTrip):
            self.resistance_trips.append(message)
            if self._host_blind:
                self._unheard.append(message)
            else:
                self._host_hears(message)
        elif self._host_blind:
            return
        elif isinstance(message, PressureSample):
            self._on_sample(
                round(message.board_time_s * 1_000_000),
                message.pressure_mmhg,
                now_s,
                message.sample_counter,
            )
        elif isinstance(message, BoardEventMessage) and message.kind is EventKind.CUTOFF_TRIP:
            self.interlock.trip(
                StopCause.BOARD_TRIP,
                "I/O board: cutoff_trip",
                mode=self.controller.setpoint.mode,
                figures={"pressure_mmhg": message.pressure_mmhg},
            )

    def _host_hears(self, trip: ResistanceTrip) -> None:
        self.interlock.trip(
            StopCause.BOARD_RESISTANCE_STOP,
            "I/O board: resistance stop",
            mode=self.controller.setpoint.mode,
            figures={"board_stop_ms": trip.latency_ms},
        )


def _now(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (the wires here answer within the call) to its end,
    from synchronous code."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a bench wire suspended: it must answer within the call")


def _ignore_sample(t_us: int, pressure_mmhg: float, rx_time_s: float, counter: int) -> None:
    """Before the controller exists (the zero's settling time), samples go nowhere."""
