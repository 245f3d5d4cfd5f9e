"""The control daemon: wires the profile, the drivers, the interlock, the fluid loop and the API.

One process, one event loop, one TaskGroup. This process runs the fluid loop and nothing that
could starve it: video capture and encoding belong to a separate process (the camera issue), so
a slow frame can never delay a stop.

Every device has a supervisor task: connect, configure, watch the link, and on loss report it
(a latched fault if fluid was moving) and reconnect with back-off. SIGINT and SIGTERM lead to
one orderly shutdown path that stops the pump and confirms it before the links close.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiomqtt import MqttError

from drivers.clock import REAL_CLOCK, Clock
from drivers.ioboard import (
    BoardCommandRejectedError,
    BoardEvent,
    EventKind,
    IoBoard,
    PressureSample,
    Trip,
)
from drivers.ne1000 import (
    AlarmKind,
    AlarmReply,
    ErrorReply,
    Ne1000Pump,
    PumpError,
    PumpStatus,
    PumpTimeoutError,
)
from drivers.transport.backoff import Backoff
from drivers.transport.mqtt import (
    JsonObject,
    MqttEndpoint,
    Request,
    RequestRefusedError,
    bounded,
)
from drivers.transport.serial import LinkClosedError
from rig.api.commands import (
    Bolus,
    Command,
    CommandError,
    EmergencyStop,
    HoldPressure,
    Irrigate,
    Prime,
    ResetFault,
    RunSelfTest,
    SimulateLoopHang,
    Status,
    Stop,
    parse_command,
)
from rig.api.roles import Role, role_may
from rig.api.topics import RigTopics
from rig.config import RigProfile
from rig.events.journal import Journal
from rig.events.models import (
    ApiLost,
    ApiRestored,
    CommandAudit,
    CommandDenied,
    CommandRejected,
    DeviceLinkChanged,
    EventBase,
    FaultReset,
    JournalFault,
    PumpPoweredUp,
    PumpSelfTestSilence,
    RequestRefused,
    SelfTestCompleted,
    SelfTestWatchdogTrip,
    StateChanged,
    Stopped,
)
from rig.fluid.controller import (
    MOTION_MODES,
    CommandRejectedError,
    FluidController,
    PumpReading,
    StateConflictError,
)
from rig.fluid.events import StopCause, StopEvent
from rig.safety.containment import contain
from rig.safety.interlock import Denial, Interlock, InterlockDeniedError, PumpFaultError
from rig.safety.links import BoardLink, PumpLink
from rig.safety.selftest import CheckResult as SelfTestCheck
from rig.safety.selftest import SelfTest, SelfTestReport, SelfTestSettings
from rig.safety.stall_guard import LoopStallGuard
from rig.safety.states import RigState, Transition

log = logging.getLogger(__name__)

CONFIRM_STOP_TIMEOUT_S = 0.5
RUN_WITHOUT_REPLY = frozenset({"fluid.stop", "estop"})
"""Ops run even when the request has no response topic: they can only make the rig safer."""


@dataclass(frozen=True)
class DevicePorts:
    """Where each device is attached, resolved from the profile (or given by the simulator)."""

    pump: str
    board: str


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


class RigDaemon:
    def __init__(
        self,
        profile: RigProfile,
        ports: DevicePorts,
        broker: BrokerAddress,
        *,
        clock: Clock = REAL_CLOCK,
        journal_path: Path | None = None,
    ) -> None:
        self.profile = profile
        self.topics = RigTopics(profile.rig_id)
        self._broker = broker
        self._clock = clock
        pump_cfg, board_cfg = profile.devices.pump, profile.devices.board
        # The drivers go to the interlock, which alone may move or configure them; the daemon
        # keeps only their links (rig/safety/links.py).
        pump = Ne1000Pump(
            ports.pump,
            baudrate=pump_cfg.baudrate,
            address=pump_cfg.address,
            safe_mode_timeout_s=pump_cfg.safe_mode_timeout_s,
            reply_timeout_s=pump_cfg.reply_timeout_ms / 1000.0,
            clock=clock,
        )
        board = IoBoard(
            ports.board,
            baudrate=board_cfg.baudrate,
            clock=clock,
            on_sample=self._on_sample,
            on_event=self._on_board_event,
            command_timeout_s=board_cfg.command_timeout_ms / 1000.0,
        )
        self.interlock = Interlock(pump, board)
        self.pump_link = PumpLink(pump)
        self.board_link = BoardLink(board)
        self.controller = FluidController(profile.limits, profile.fluid, self.interlock, clock)
        # Every event goes to the journal first; the API publishes from it (rig/events/).
        self.journal = Journal(journal_path, on_fault=self._on_journal_fault)
        self._published_seq = self.journal.opened_at_seq
        self._state_changed = asyncio.Event()
        self._shutdown = asyncio.Event()
        self._api_connected = False
        self._api_lost_at_s: float | None = None
        self.interlock.add_stop_listener(self._on_stop)
        self.interlock.add_denial_listener(self._on_denial)
        self.interlock.machine.add_listener(self._on_transition)
        # The self-test's hold on the daemon's periodic traffic (rig/safety/selftest.py).
        self.heartbeats_paused = False
        self.last_heartbeat_s = 0.0
        self.pump_connections = 0
        self.self_test_report: SelfTestReport | None = None
        self._self_test_lock = asyncio.Lock()
        self._expecting_board_trip = False
        self.stall_guard = LoopStallGuard(
            profile.fluid.loop_stall_timeout_ms / 1000.0,
            emergency_stop=self.interlock.stop_from_thread,
            on_stall_reported=self._on_loop_stall,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def request_shutdown(self) -> None:
        """Stop the pump now, then wind down. Safe to call from a signal handler, and twice."""
        self._stop_fluid(StopCause.SHUTDOWN, "daemon shutting down")
        self._shutdown.set()

    def _stop_fluid(self, cause: StopCause, message: str) -> None:
        controller = self.controller
        if controller.pump_running or controller.setpoint.mode in MOTION_MODES:
            self.interlock.trip(cause, message, mode=controller.setpoint.mode)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.journal.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_shutdown)
        try:
            async with asyncio.TaskGroup() as tasks:
                for subsystem, task in self._control_tasks():
                    tasks.create_task(contain(subsystem, task, self._on_task_fault, self._clock))
                # The API is a subsystem like a device, not the context of the others: the
                # fluid loop and the devices run on while the broker is away.
                tasks.create_task(self._supervise_api())
                await self._shutdown.wait()
                raise _ShutdownRequestedError
        except* _ShutdownRequestedError:
            pass
        finally:
            await self._stop_everything()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            # The shutdown's own events (the stop) are written before the journal closes.
            await asyncio.to_thread(self.journal.close)

    def _control_tasks(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """The device and control tasks, each run under fault containment."""
        return [
            ("board supervisor", self._supervise_board),
            ("pump supervisor", self._supervise_pump),
            ("heartbeat", self._heartbeat),
            ("self-test loop", self._self_test_when_needed),
            ("stall guard", self.stall_guard.run),
            ("fluid actuation", functools.partial(self.controller.run_actuation, self._read_pump)),
        ]

    def _on_task_fault(self, subsystem: str, exc: BaseException) -> None:
        """An exception nothing expected: stop the fluid, latch a fault naming it, carry on."""
        self.interlock.trip(
            StopCause.INTERNAL_FAULT,
            f"{subsystem} failed: {type(exc).__name__}: {exc}",
            mode=self.controller.setpoint.mode,
            figures={"subsystem": subsystem, "exception": repr(exc)[:200]},
        )

    async def _stop_everything(self) -> None:
        """The one shutdown path: stop the pump, confirm it, then let the links go."""
        self._stop_fluid(StopCause.SHUTDOWN, "daemon shutting down")
        stop_failure: Exception | None = None
        try:
            async with asyncio.timeout(CONFIRM_STOP_TIMEOUT_S):
                await self.interlock.stop()
        except Exception as exc:
            stop_failure = exc
        for device in (self.pump_link, self.board_link):
            try:
                await device.close()
            except Exception as exc:
                log.warning("closing %s at shutdown failed: %r", device.url, exc)
        if stop_failure is None:
            log.info("rig %s down; pump stopped (confirmed)", self.profile.rig_id)
        else:
            log.error(
                "rig %s down; the pump's stop was NOT confirmed: %r",
                self.profile.rig_id,
                stop_failure,
            )

    # -- devices ------------------------------------------------------------------------------

    async def _supervise_board(self) -> None:
        cfg = self.profile.devices.board
        backoff = Backoff()
        while True:
            try:
                await self.board_link.connect()
                await self.interlock.configure_board(
                    watchdog_timeout_ms=cfg.watchdog_timeout_ms,
                    cutoff_mmhg=self.profile.limits.board_cutoff_mmhg,
                )
                status = await self.board_link.status()
            except (LinkClosedError, TimeoutError, OSError, InterlockDeniedError) as exc:
                log.warning("I/O board not available (%s)", exc)
                with contextlib.suppress(Exception):
                    await self.board_link.close()
                await asyncio.sleep(backoff.next_delay_s())
                continue
            backoff.reset()
            if status.trips:
                self.interlock.trip(
                    StopCause.BOARD_TRIP,
                    "I/O board reports a latched trip from before this start: "
                    + ", ".join(str(t.name).lower() for t in Trip if t in status.trips),
                    mode=self.controller.setpoint.mode,
                )
            self.interlock.set_links(board=True)
            if not status.relay_closed and self.interlock.latched is None:
                await self.interlock.restore_pump_power()
            self._state_changed.set()
            await self.board_link.wait_closed()
            self.interlock.set_links(board=False)
            self._state_changed.set()
            if self.controller.pump_running:
                self.interlock.trip(
                    StopCause.BOARD_LINK_LOST,
                    "I/O board link lost while fluid moved",
                    mode=self.controller.setpoint.mode,
                )

    async def _supervise_pump(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self.pump_link.connect()
                await self.interlock.configure_pump(
                    syringe_diameter_mm=self.profile.syringe.inner_diameter_mm
                )
            except (LinkClosedError, PumpError, OSError, InterlockDeniedError) as exc:
                log.warning("pump not available (%s)", exc)
                with contextlib.suppress(Exception):
                    await self.pump_link.close()
                await asyncio.sleep(backoff.next_delay_s())
                continue
            backoff.reset()
            alarm = self.pump_link.last_alarm
            if alarm is AlarmKind.RESET and not self.controller.pump_running:
                # The pump powered up (its relay closes when the board connects): expected.
                self._record(PumpPoweredUp(alarm=alarm.name))
            elif (
                alarm is AlarmKind.SAFE_MODE_TIMEOUT
                and self.interlock.state is RigState.SELF_TEST
                and not self.controller.pump_running
            ):
                # The self-test's own silence: a pump on a supply of its own (not behind the
                # board's relay, as on a hybrid bench) is still powered at the re-arm and reports
                # the host's deliberate silence here. No fluid moved; nothing to latch.
                self._record(PumpSelfTestSilence(alarm=alarm.name))
            elif alarm is not None:
                # A safe-mode timeout (T), a stall (S), or a power loss while fluid moved: the
                # pump stopped on its own, and someone must see why before it runs again.
                self.interlock.trip(
                    StopCause.PUMP_ALARM,
                    f"pump reported alarm {alarm.name} at connect",
                    mode=self.controller.setpoint.mode,
                    figures={"alarm": alarm.name},
                )
            self.pump_connections += 1
            self.interlock.set_links(pump=True)
            self._state_changed.set()
            await self.pump_link.wait_closed()
            self.interlock.set_links(pump=False)
            self._state_changed.set()
            if self.controller.pump_running:
                self.interlock.trip(
                    StopCause.PUMP_LINK_LOST,
                    "pump link lost while fluid moved",
                    mode=self.controller.setpoint.mode,
                )

    async def _heartbeat(self) -> None:
        period_s = self.profile.devices.board.heartbeat_period_ms / 1000.0
        while True:
            if self.interlock.relay_link_up and not self.heartbeats_paused:
                with contextlib.suppress(LinkClosedError):
                    if self.board_link.heartbeat_nowait() is not None:
                        self.last_heartbeat_s = self._clock.monotonic()
            await asyncio.sleep(period_s)

    # -- self-test ----------------------------------------------------------------------------

    async def _self_test_when_needed(self) -> None:
        """Run the self-test whenever the rig is whole, unlatched and not yet checked."""
        while True:
            interlock = self.interlock
            if (
                interlock.state is RigState.OFFLINE
                and interlock.pump_link_up
                and interlock.relay_link_up
                and interlock.latched is None
                and not interlock.self_test_passed
            ):
                await self.run_self_test()
            await asyncio.sleep(0.2)

    async def run_self_test(self) -> SelfTestReport:
        async with self._self_test_lock:
            self.interlock.begin_self_test()
            self._state_changed.set()
            cfg = self.profile.devices
            settings = SelfTestSettings(
                pump_safe_mode_timeout_s=float(cfg.pump.safe_mode_timeout_s),
                board_watchdog_timeout_s=cfg.board.watchdog_timeout_ms / 1000.0,
                heartbeat_period_s=cfg.board.heartbeat_period_ms / 1000.0,
                pressure_zero_tolerance_mmhg=self.profile.fluid.pressure_zero_tolerance_mmhg,
            )
            test = SelfTest(
                self.pump_link,
                self.board_link,
                self.interlock,
                self,
                settings,
                self._clock,
                expect_board_trip=self._expect_board_trip,
            )
            try:
                report = await test.run()
            except Exception as exc:
                log.exception("self-test aborted")
                report = SelfTestReport()
                report.checks.append(_aborted(exc))
            self.self_test_report = report
            self._record(SelfTestCompleted(passed=report.passed, checks=report.checks))
            self.interlock.end_self_test(report.passed, report.summary())
            self._state_changed.set()
            return report

    def _expect_board_trip(self, expected: bool) -> None:
        self._expecting_board_trip = expected

    @property
    def pump_polling_paused(self) -> bool:
        return self.controller.polling_paused

    @pump_polling_paused.setter
    def pump_polling_paused(self, paused: bool) -> None:
        self.controller.polling_paused = paused

    def mean_pressure_mmhg(self) -> float | None:
        return self.controller.mean_pressure_mmhg

    async def restore_pump_power(self) -> None:
        await self.interlock.restore_pump_power()

    async def _read_pump(self) -> PumpReading:
        try:
            dispensed = await self.pump_link.dispensed()
        except PumpTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except PumpError as exc:
            raise PumpFaultError(str(exc)) from exc
        stop_reply = self.pump_link.take_stop_reply()
        if isinstance(stop_reply, AlarmReply | ErrorReply):
            # The fault path's stop is written without waiting for its answer; an alarm or a
            # refusal in that answer is seen here, and latched like any other pump fault.
            self.interlock.trip(
                StopCause.PUMP_ALARM,
                f"the pump answered its stop command with {stop_reply}",
                mode=self.controller.setpoint.mode,
            )
        return PumpReading(float(dispensed.infused_ml), dispensed.status is PumpStatus.INFUSING)

    def _on_sample(self, sample: PressureSample) -> None:
        # The board's own 32-bit microsecond clock wraps every 71.6 minutes; the driver extends
        # it (and, on the simulator, lines it up with the host's clock): use the extended time.
        board_us = round(sample.board_time_s * 1_000_000)
        self.controller.on_sample(
            board_us, sample.pressure_mmhg, sample.rx_time_s, sample.sample_counter
        )

    def _on_board_event(self, event: BoardEvent) -> None:
        try:
            self._handle_board_event(event)
        except Exception as exc:
            self._on_task_fault("board event handling", exc)

    def _handle_board_event(self, event: BoardEvent) -> None:
        if event.kind is EventKind.ESTOP_PRESSED:
            self.interlock.estop(
                "the I/O board's e-stop button", mode=self.controller.setpoint.mode
            )
        elif event.kind is EventKind.WATCHDOG_TRIP and self._expecting_board_trip:
            self._record(SelfTestWatchdogTrip(board_t_us=event.t_us))
        elif event.kind in (EventKind.WATCHDOG_TRIP, EventKind.CUTOFF_TRIP):
            self.interlock.trip(
                StopCause.BOARD_TRIP,
                f"I/O board: {event.kind.name.lower()}",
                mode=self.controller.setpoint.mode,
                figures={"board_t_us": event.t_us, "pressure_mmhg": event.pressure_mmhg},
            )

    # -- API ----------------------------------------------------------------------------------

    async def _supervise_api(self) -> None:
        """Connect to the broker and serve the API; on losing it, stop the fluid (latched
        `api_lost`: nobody can see or stop it), and reconnect with back-off. Events recorded
        meanwhile wait in the journal and are published once the broker is back: the story."""
        backoff = Backoff(initial_s=0.1, maximum_s=2.0)
        while True:
            reason = ""
            try:
                async with self._api_endpoint() as mqtt:
                    backoff.reset()
                    await self._serve_api(mqtt)
            except* MqttError as group:
                reason = _first_cause(group)
            except* Exception as group:
                # A bug in the API's tasks: a fault of this subsystem, handled the same way.
                log.error("API failed", exc_info=group)
                reason = _first_cause(group)
            if self._api_lost_at_s is None and self._api_connected:
                self._on_api_lost(reason)
            self._api_connected = False
            log.warning("broker connection: %s; retrying", reason)
            await asyncio.sleep(backoff.next_delay_s())

    def _api_endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(
            self._broker.host,
            self._broker.port,
            name=f"rigd-{self.profile.rig_id}",
            will_topic=self.topics.state,
            will_payload={"online": False, "rig_id": self.profile.rig_id},
            username=self._broker.username,
            password=self._broker.password,
            tls_ca_file=self.profile.broker.tls_ca_file,
        )

    async def _serve_api(self, mqtt: MqttEndpoint) -> None:
        for role in Role:
            await mqtt.serve(
                self.topics.commands_for(role),
                functools.partial(self.handle_command, role=role),
                on_refused=functools.partial(self._on_request_refused, role=role),
            )
        self._api_connected = True
        log.info(
            "rig %s up; commands on %s; broker client id %s",
            self.profile.rig_id,
            self.topics.commands_for("<role>"),
            mqtt.client_id,
        )
        if self._api_lost_at_s is not None:
            down_s = self._clock.monotonic() - self._api_lost_at_s
            self._api_lost_at_s = None
            self._record(ApiRestored(down_s=round(down_s, 3)))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(mqtt.wait_lost())
                tasks.create_task(self._publish_telemetry(mqtt))
                tasks.create_task(self._publish_state(mqtt))
                tasks.create_task(self._publish_events(mqtt))
        finally:
            if self._shutdown.is_set():
                # A clean disconnect sends no last will: say offline ourselves.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CONFIRM_STOP_TIMEOUT_S):
                        await mqtt.publish(
                            self.topics.state, self._state(online=False), retain=True, qos=1
                        )

    def _on_api_lost(self, reason: str) -> None:
        self._api_lost_at_s = self._clock.monotonic()
        self._record(ApiLost(reason=bounded(reason)))
        self._stop_fluid(
            StopCause.API_LOST,
            f"the operators' channel was lost (broker connection: {bounded(reason, 120)}): "
            "nobody could see or stop the fluid",
        )

    def _on_request_refused(
        self, request: Request, error: RequestRefusedError, *, role: Role
    ) -> None:
        self._record(
            RequestRefused(
                role=role.value, client=request.client_id, code=error.code, reason=str(error)
            )
        )

    async def handle_command(self, request: Request, *, role: Role) -> JsonObject:
        """One request from `role`: parsed, held to the role's ops, executed, and audited (a
        `command` event with role, client, op and result, on the events topic and in the log)."""
        client = request.client_id
        try:
            command = parse_command(request.payload)
        except CommandError as exc:
            self._record(CommandRejected(role=role.value, client=client, reason=str(exc)))
            return {"ok": False, "error": {"code": exc.code, "message": str(exc)}}
        if client is None and command.op not in RUN_WITHOUT_REPLY:
            # Nobody could be told the outcome: refuse it. A stop is the exception, because
            # refusing a stop is never the safe side (a pedal or button may fire and forget).
            reply: JsonObject = {
                "ok": False,
                "error": {
                    "code": "no_response_topic",
                    "message": f"{command.op} refused: a request needs a ResponseTopic "
                    f"(reply/<client id>); only {', '.join(sorted(RUN_WITHOUT_REPLY))} run "
                    "without one",
                },
            }
        else:
            try:
                reply = await self._execute(command, role)
            except Exception as exc:
                # The endpoint answers `internal`; the trail must show it too.
                self._audit(command.op, role, client, {"code": "internal", "message": repr(exc)})
                raise
        failed = None if reply.get("ok") else reply.get("error") or {"code": "failed"}
        self._audit(command.op, role, client, failed)
        return reply

    def _audit(self, op: str, role: Role, client: str | None, error: JsonObject | None) -> None:
        if op == "status":  # a read changes nothing; polled at 20 Hz it would drown the trail
            return
        self._record(
            CommandAudit(
                op=op,
                role=role.value,
                client=client,
                ok=error is None,
                error=None if error is None else error.get("code"),
                message=bounded(str(error["message"]), 1000)
                if error is not None and error.get("message") is not None
                else None,
            )
        )

    async def _execute(self, command: Command, role: Role) -> JsonObject:
        if not role_may(role, command.op):
            reason = f"{command.op} refused: the {role} role may not request it"
            self._record(CommandDenied(op=command.op, role=role.value, reason=reason))
            return {"ok": False, "error": {"code": "denied", "message": reason}}
        controller = self.controller
        try:
            match command:
                case Irrigate(flow_ml_min=flow):
                    controller.irrigate(flow)
                case HoldPressure(pressure_mmhg=pressure):
                    controller.hold_pressure(pressure)
                case Bolus(volume_ml=volume, rate_ml_min=rate):
                    controller.bolus(volume, rate)
                case Prime():
                    controller.prime()
                case Stop():
                    controller.stop()
                case EmergencyStop(source=source):
                    event = self.interlock.estop(
                        f"client ({source})", mode=controller.setpoint.mode
                    )
                    return {
                        "ok": True,
                        "result": {"state": self.interlock.state.value, "stop": event.as_dict()},
                    }
                case SimulateLoopHang(seconds=seconds):
                    if self.profile.simulator is None:
                        return {
                            "ok": False,
                            "error": {
                                "code": "denied",
                                "message": "debug.hang exists only on a simulator profile",
                            },
                        }
                    # Deliberately block the event loop, as a hung library call would.
                    threading.Event().wait(seconds)
                    return {"ok": True, "result": {"hung_s": seconds}}
                case RunSelfTest():
                    report = await self.run_self_test()
                    return {
                        "ok": report.passed,
                        "result": report.as_dict(),
                        **(
                            {}
                            if report.passed
                            else {
                                "error": {"code": "self_test_failed", "message": report.summary()}
                            }
                        ),
                    }
                case ResetFault():
                    cleared = await self._reset()
                    return {
                        "ok": True,
                        "result": {"cleared": None if cleared is None else cleared.as_dict()},
                    }
                case Status():
                    return {"ok": True, "result": self._state(online=True)}
        except CommandRejectedError as exc:
            self._record(CommandRejected(op=command.op, reason=str(exc)))
            code = "state_conflict" if isinstance(exc, StateConflictError) else "out_of_range"
            return {"ok": False, "error": {"code": code, "message": str(exc)}}
        except InterlockDeniedError as exc:
            return {"ok": False, "error": {"code": "denied", "message": exc.reason}}
        except BoardCommandRejectedError as exc:
            message = f"the I/O board refused: {exc} (is the e-stop button still pressed?)"
            self._record(CommandDenied(op=command.op, reason=message))
            return {"ok": False, "error": {"code": "denied", "message": message}}
        self._state_changed.set()
        return {"ok": True, "result": {"mode": controller.setpoint.mode.value}}

    async def _reset(self) -> StopEvent | None:
        relay_was_open = (
            self.interlock.relay_link_up and not (await self.board_link.status()).relay_closed
        )
        cleared = await self.controller.reset()
        if relay_was_open and self.interlock.pump_link_up:
            # The pump has just been powered up again and booted in basic mode: reconnect it
            # so that its supervisor puts it back into safe mode.
            await self.pump_link.close()
        self._record(FaultReset(cleared=None if cleared is None else cleared.cause))
        self._state_changed.set()
        return cleared

    def _on_loop_stall(self, stall_s: float) -> None:
        """The loop turns again after a stall the guard acted on: make it a latched fault."""
        self.interlock.trip(
            StopCause.LOOP_STALL,
            f"the event loop stalled for {stall_s * 1000:.0f} ms "
            f"(limit {self.stall_guard.limit_s * 1000:.0f} ms); the guard thread stopped the pump",
            mode=self.controller.setpoint.mode,
            figures={
                "stall_ms": round(stall_s * 1000, 1),
                "limit_ms": self.stall_guard.limit_s * 1000,
            },
        )

    def _on_denial(self, denial: Denial) -> None:
        self._record(CommandDenied(op=denial.action, reason=denial.reason, state=denial.state))

    def _on_stop(self, event: StopEvent) -> None:
        self._record(Stopped.of(event))
        self._state_changed.set()

    def _on_transition(self, transition: Transition) -> None:
        self._record(StateChanged.of(transition))

    def record_link(self, device: str, up: bool, detail: str = "") -> None:
        """A device supervisor's word that `device`'s link came up or went down."""
        self._record(DeviceLinkChanged(device=device, up=up, detail=detail))

    def _on_journal_fault(self, reason: str) -> None:
        """The journal cannot be written: an alarm on the events topic, nothing stopped. The
        safety functions do not depend on the record (issue 11 adds: no new procedure)."""
        self._record(JournalFault(reason=bounded(reason, 1000)))

    def _record(self, event: EventBase) -> None:
        recorded = self.journal.append(event, t_us=int(self._clock.monotonic() * 1e6))
        log.info("event %s", recorded.kind, extra={"event": recorded.as_json()})

    def _state(self, *, online: bool) -> JsonObject:
        controller = self.controller
        latched = self.interlock.latched
        return {
            "online": online,
            "rig_id": self.profile.rig_id,
            "state": self.interlock.state.value,
            "mode": controller.setpoint.mode.value,
            "self_test": None if self.self_test_report is None else self.self_test_report.as_dict(),
            "setpoint": {
                "flow_ml_min": controller.setpoint.flow_ml_min,
                "pressure_mmhg": controller.setpoint.pressure_mmhg,
                "volume_ul": controller.setpoint.volume_ul,
            },
            "primed": controller.primed,
            "fault": None if latched is None else latched.as_dict(),
            "devices": {"pump": self.interlock.pump_link_up, "board": self.interlock.relay_link_up},
            "last_stop": None if controller.last_stop is None else controller.last_stop.as_dict(),
        }

    def telemetry(self) -> JsonObject:
        controller = self.controller
        reading = controller.last_reading
        mean = controller.mean_pressure_mmhg
        return {
            "t_us": controller.last_sample_t_us,
            "pressure_mmhg": None if mean is None else round(mean, 2),
            "flow_ml_min": round(controller.applied_flow_ml_min, 4),
            "resistance_mmhg_min_per_ml": _round(reading.resistance_mmhg_min_per_ml),
            "resistance_rise_mmhg_min_per_ml_per_s": _round(reading.rise_mmhg_min_per_ml_per_s),
            "mode": controller.setpoint.mode.value,
            "pump_running": controller.pump_running,
            "run_volume_ul": round(controller.run_volume_ul, 2),
            "saline_ml": round(controller.saline_ul / 1000.0, 4),
            "contrast_ml": round(controller.contrast_ul / 1000.0, 4),
            "fault": None if self.interlock.latched is None else str(self.interlock.latched.cause),
            "links": {
                "pump": self.pump_link.stats.as_dict(),
                "board": self.board_link.stats.as_dict(),
            },
        }

    async def _publish_telemetry(self, mqtt: MqttEndpoint) -> None:
        period_s = 1.0 / self.profile.telemetry.fluid_hz
        next_s = self._clock.monotonic()
        while True:
            await mqtt.publish(self.topics.fluid_telemetry, self.telemetry())
            next_s += period_s
            await asyncio.sleep(max(0.0, next_s - self._clock.monotonic()))

    async def _publish_state(self, mqtt: MqttEndpoint) -> None:
        while True:
            await mqtt.publish(self.topics.state, self._state(online=True), retain=True, qos=1)
            self._state_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._state_changed.wait()

    async def _publish_events(self, mqtt: MqttEndpoint) -> None:
        # By cursor from the journal, which hands out committed events only, as the text it
        # holds: what the API has published is on disk, byte for byte. An event whose publish
        # fails with the connection is the first one published on the next: the story since a
        # loss is told whole once the broker is back.
        while True:
            for seq, body in await self.journal.read_after(self._published_seq):
                await mqtt.publish(self.topics.events, body, qos=1)
                self._published_seq = seq


class _ShutdownRequestedError(Exception):
    pass


def _aborted(exc: Exception) -> SelfTestCheck:
    return SelfTestCheck("self_test", False, f"aborted: {type(exc).__name__}: {exc}")


def _first_cause(group: BaseExceptionGroup[Exception]) -> str:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
