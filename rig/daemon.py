"""The control daemon: builds the rig from its profile and runs it.

One process, one event loop, one TaskGroup. This process runs the fluid loop and nothing that
could starve it: video capture and encoding belong to a separate process (the camera issue), so
a slow frame can never delay a stop.

The devices come from the profile's `[devices]` sections (rig/devices/registry.py); each has the
one generic supervisor (rig/devices/supervisor.py). The interlock is built from the actuators the
devices hand it; the fluid controller acts only through the interlock; commands arrive through
the one dispatcher (rig/api/dispatch.py), over the MQTT API (rig/api/service.py). SIGINT and
SIGTERM lead to one orderly shutdown path that stops the pump and confirms it before the links
close.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drivers.clock import REAL_CLOCK, Clock
from drivers.realtime import join_control_loop
from drivers.transport.mqtt import JsonObject, bounded
from rig.alarms.register import AlarmRegister
from rig.api.dispatch import CommandDispatcher, RigOperations
from rig.api.roles import Role
from rig.api.service import ApiService, ApiSources, BrokerAddress
from rig.camera.stream import VideoBroker
from rig.config import RigProfile
from rig.devices.basket import BasketDevice
from rig.devices.basket_machine import BasketUnavailableError, Op
from rig.devices.camera import CameraDevice, CameraError
from rig.devices.contract import DeviceContext, ResetNotes
from rig.devices.registry import DeviceRegistry
from rig.devices.selftest_run import SelfTestRunner
from rig.devices.supervisor import supervise
from rig.events.journal import Journal, last_of_kind
from rig.events.models import (
    CommandDenied,
    DaemonStarted,
    EventBase,
    FaultReset,
    JournalFault,
    LoopStalledAtRest,
    ProcedureStarted,
    SelfTestCompleted,
    StateChanged,
    Stopped,
    TrendSample,
)
from rig.fluid.controller import MOTION_MODES, FluidController
from rig.fluid.events import StopCause, StopEvent
from rig.record.procedures import OpenProcedure, ProcedureBook
from rig.record.storage import StorageMonitor
from rig.record.trend import record_trends
from rig.safety.containment import contain
from rig.safety.interlock import Denial
from rig.safety.selftest import SelfTestReport
from rig.safety.stall_guard import LoopStallGuard
from rig.safety.states import Transition

__all__ = ["BrokerAddress", "RigDaemon"]

log = logging.getLogger(__name__)


def _video_broker(
    profile: RigProfile, broker: BrokerAddress, camera_login: tuple[str, str | None] | None
) -> VideoBroker | None:
    """Where and as whom the camera process sends the view to the consoles: the daemon's broker,
    on a connection of its own (rig/camera/stream.py), with a login of its own that may only
    publish the view (rig.api.roles): never the daemon's, which can write the rig's state."""
    if camera_login is None and broker.username is not None:
        log.warning(
            "the camera has no broker login of its own (broker.camera_username): "
            "no video goes to consoles"
        )
        return None
    username, password = (None, None) if camera_login is None else camera_login
    tls = profile.broker.tls_ca_file
    return VideoBroker(
        broker.host,
        broker.port,
        profile.rig_id,
        username,
        None if tls is None else str(tls),
        password=password,
    )


CONFIRM_STOP_TIMEOUT_S = 0.5
DURABLE_ANSWER_TIMEOUT_S = 2.0
"""How long a command's answer waits for the journal to commit it (a commit takes milliseconds:
one fsync); past this the answer goes out flagged `journaled: false`, and a journal that cannot
write at all has raised its own fault."""


class RigDaemon:
    def __init__(
        self,
        profile: RigProfile,
        ports: Mapping[str, str],
        broker: BrokerAddress,
        *,
        camera_login: tuple[str, str | None] | None = None,
        clock: Clock = REAL_CLOCK,
        journal_path: Path | None = None,
        loop_scheduling: str = "ordinary",
    ) -> None:
        """`ports`: where each device of the profile is attached, by device name.
        `camera_login`: the camera process's own (user, password) on `broker` (None: it has
        none, and on a broker with logins it then sends no video to consoles).
        `journal_path`: the event journal's file (None: events kept in memory only).
        `loop_scheduling`: how the event loop is scheduled (drivers/realtime.py), for the state."""
        self.profile = profile
        self.loop_scheduling = loop_scheduling
        self._clock = clock
        self._shutdown = asyncio.Event()
        # Every event goes to the journal first; the API publishes from it (rig/events/).
        self.journal = Journal(journal_path, on_fault=self._on_journal_fault)
        # The alarms follow the journaled events (rig/alarms/conditions.py).
        self.alarms = AlarmRegister(self._record, time.time, self._state_changed)
        self.context = DeviceContext(
            profile, clock, self._record, self._state_changed, self._on_task_fault
        )
        self.devices = DeviceRegistry(ports, self.context)
        # The drivers go to the interlock, which alone may move or configure them; the devices
        # keep only their links (rig/safety/links.py).
        self.interlock = self.devices.build_interlock()
        if self._camera() is not None:
            # No frame yet: nothing flows into the duct and the basket does not close until
            # the camera's frames say it is live (rig/devices/camera.py).
            self.interlock.set_video_live(False)
        elif profile.simulator is not None:
            # A simulator profile without its camera (the default, to spare the CI's two cores
            # the capture process): the simulated scope is taken as live, so that the basket can
            # be exercised. A bench profile without one has no video fact: the basket does not
            # close, and the fluid has no video to lose.
            self.interlock.set_video_live(True)
        self.controller = FluidController(profile.limits, profile.fluid, self.interlock, clock)
        self.context.bind(self.interlock, self.controller)
        camera = self._camera()
        if camera is not None:
            camera.link.video_broker = _video_broker(profile, broker, camera_login)
        self.interlock.add_stop_listener(self._on_stop)
        self.interlock.add_denial_listener(self._on_denial)
        self.interlock.machine.add_listener(self._on_transition)
        self.self_test = SelfTestRunner(self.devices, self.context, self._on_self_test)
        # The record lives beside the journal (rig/record/); its storage never stops the fluid.
        self.storage = StorageMonitor(
            None if journal_path is None else journal_path.parent,
            profile.record.min_free_mb,
            self._record,
            lambda: self.journal.fault,
        )
        self.procedures = ProcedureBook(
            profile,
            self._record,
            refusal=self.storage.refusal,
            primed=lambda: self.controller.primed,
            volumes=lambda: (
                self.controller.saline_ul / 1000.0,
                self.controller.contrast_ul / 1000.0,
            ),
            wall_time=time.time,
        )
        self.dispatcher = CommandDispatcher(
            self.controller,
            self.interlock,
            RigOperations(
                run_self_test=self.self_test.run,
                reset=self.reset,
                state=lambda: self.state(online=True),
                record=self._record,
                journaled=self._journaled,
                state_changed=self._state_changed,
                simulator=profile.simulator is not None,
                forward=self.devices.forward,
                start_procedure=self._start_procedure,
                stop_procedure=lambda role, client: self.procedures.stop(role.value, client),
                acknowledge_alarm=lambda alarm, role, client: self.alarms.acknowledge(
                    alarm, role.value, client
                ),
                basket=self._basket_command,
                snapshot=self._snapshot,
                record_video=self._record_video,
            ),
            clock,
        )
        self.context.bind_dispatcher(self.dispatcher.handle)
        self.api = ApiService(
            profile,
            broker,
            self.dispatcher,
            ApiSources(
                state=lambda online: self.state(online=online),
                telemetry=self.telemetry,
                record=self._record,
                stop_fluid=self._stop_fluid,
            ),
            self.journal,
            clock,
            self._shutdown,
        )
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
        # The transfers the loop awaits (USB, file reads) run just below it: see realtime.py.
        loop.set_default_executor(ThreadPoolExecutor(initializer=join_control_loop))
        self.journal.start()
        self._record(
            DaemonStarted(rig_id=self.profile.rig_id, opened_at_seq=self.journal.opened_at_seq)
        )
        await self._resume_procedure()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_shutdown)
        try:
            async with asyncio.TaskGroup() as tasks:
                for subsystem, task in self._control_tasks():
                    tasks.create_task(contain(subsystem, task, self._on_task_fault, self._clock))
                # The API is a subsystem like a device, not the context of the others: the
                # fluid loop and the devices run on while the broker is away.
                tasks.create_task(self.api.supervise())
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
        tasks: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        for device in self.devices:
            tasks.append((f"{device.name} supervisor", functools.partial(supervise, device)))
            tasks.extend(device.tasks())
        tasks += [
            ("self-test loop", self.self_test.run_when_needed),
            ("stall guard", self.stall_guard.run),
            ("record storage", self.storage.run),
            (
                "record trends",
                functools.partial(
                    record_trends,
                    self.procedures,
                    self.controller,
                    self._record,
                    self.profile.record.trend_period_ms / 1000.0,
                ),
            ),
        ]
        return tasks

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
        for device in self.devices:
            try:
                await device.link.close()
            except Exception as exc:
                log.warning("closing %s at shutdown failed: %r", device.link.url, exc)
        if stop_failure is None:
            log.info("rig %s down; pump stopped (confirmed)", self.profile.rig_id)
        else:
            log.error(
                "rig %s down; the pump's stop was NOT confirmed: %r",
                self.profile.rig_id,
                stop_failure,
            )

    # -- operations ---------------------------------------------------------------------------

    async def reset(self) -> StopEvent | None:
        """The operator's reset: clear the latched fault; each device does what it must around
        it (a pump whose power comes back reboots, and is reconnected into safe mode)."""
        notes = ResetNotes()
        for device in self.devices:
            await device.before_reset(notes)
        cleared = await self.controller.reset()
        for device in self.devices:
            await device.after_reset(notes)
        self._record(FaultReset(cleared=None if cleared is None else cleared.cause))
        self._state_changed()
        return cleared

    def _basket(self) -> BasketDevice | None:
        try:
            return self.devices.one(BasketDevice)
        except LookupError:
            return None

    async def _basket_command(self, op: Op) -> JsonObject:
        basket = self._basket()
        if basket is None:
            raise BasketUnavailableError(f"basket.{op}: this rig has no [devices.basket]")
        return await basket.command(op)

    async def _start_procedure(
        self, ref: str | None, syringe_lot: str | None, role: Role, client: str | None
    ) -> OpenProcedure:
        await self.storage.check()  # a disk that filled since the last check refuses it now
        return self.procedures.start(ref, syringe_lot, role.value, client)

    async def _resume_procedure(self) -> None:
        """A procedure the last run left open goes on (rig/record/procedures.py)."""
        path = self.journal.path
        if path is None:
            return
        try:
            last = await asyncio.to_thread(
                last_of_kind, path, ("procedure_started", "procedure_stopped")
            )
            trend = await asyncio.to_thread(last_of_kind, path, ("trend",))
        except Exception as exc:
            # The record is not the safety: a journal that cannot be read starts no procedure.
            log.error("cannot read the open procedure from %s: %r", path, exc)
            return
        self.procedures.resume(
            last if isinstance(last, ProcedureStarted) else None,
            trend if isinstance(trend, TrendSample) else None,
        )

    def _camera(self) -> CameraDevice | None:
        try:
            return self.devices.one(CameraDevice)
        except LookupError:
            return None

    async def _snapshot(self, note: str) -> JsonObject:
        return await self._camera_op(
            "camera.snapshot",
            lambda camera, record_dir, procedure: camera.snapshot(note, record_dir, procedure),
        )

    async def _record_video(self, start: bool) -> JsonObject:
        return await self._camera_op(
            "camera.record",
            lambda camera, record_dir, procedure: camera.record(start, record_dir, procedure),
        )

    async def _camera_op(
        self,
        op: str,
        run: Callable[[CameraDevice, Path, str | None], Awaitable[JsonObject]],
    ) -> JsonObject:
        """A camera op into the record directory (the journal's), or why it cannot run."""
        camera = self._camera()
        journal = self.journal.path
        if camera is None or journal is None:
            missing = "no camera ([devices.camera])" if camera is None else "no record (journal)"
            return {"ok": False, "error": {"code": "unavailable", "message": f"{op}: {missing}"}}
        opened = self.procedures.open
        try:
            result = await run(camera, journal.parent, None if opened is None else opened.procedure)
        except CameraError as exc:
            return {"ok": False, "error": {"code": "unavailable", "message": f"{op}: {exc}"}}
        return {"ok": True, "result": result}

    # -- events and state ---------------------------------------------------------------------

    def _on_self_test(self, report: SelfTestReport) -> None:
        self._record(SelfTestCompleted(passed=report.passed, checks=report.checks))

    def _on_loop_stall(self, stall_s: float) -> None:
        """The loop turns again after a stall the guard acted on: a latched fault if fluid was
        moving. At rest (a start-up under load, a long collection) nothing was at risk and the
        board's watchdog stood behind the guard anyway: recorded, not latched, since a fault
        that latches with nothing moving is a nuisance stop (H24)."""
        controller = self.controller
        if not (controller.pump_running or controller.setpoint.mode in MOTION_MODES):
            log.warning("event loop stalled for %.0f ms at rest", stall_s * 1000)
            self._record(
                LoopStalledAtRest(
                    stall_ms=round(stall_s * 1000, 1),
                    limit_ms=self.stall_guard.limit_s * 1000,
                )
            )
            return
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
        self._state_changed()

    def _on_transition(self, transition: Transition) -> None:
        self._record(StateChanged.of(transition))

    def _on_journal_fault(self, reason: str) -> None:
        """The journal cannot be written: an alarm on the events topic, nothing stopped. The
        safety functions do not depend on the record; no new procedure starts
        (StorageMonitor.refusal)."""
        self._record(JournalFault(reason=bounded(reason, 1000)))

    def _record(self, event: EventBase) -> EventBase:
        recorded = self.journal.append(event, t_us=int(self._clock.monotonic() * 1e6))
        log.info("event %s", recorded.kind, extra={"event": recorded.as_json()})
        self.alarms.on_event(recorded)
        return recorded

    async def _journaled(self, seq: int) -> bool:
        return await self.journal.wait_committed(seq, DURABLE_ANSWER_TIMEOUT_S)

    def _state_changed(self) -> None:
        self.api.state_changed()

    def state(self, *, online: bool) -> JsonObject:
        controller = self.controller
        latched = self.interlock.latched
        report = self.self_test.last_report
        return {
            "online": online,
            "rig_id": self.profile.rig_id,
            "state": self.interlock.state.value,
            "mode": controller.setpoint.mode.value,
            "self_test": None if report is None else report.as_dict(),
            "setpoint": {
                "flow_ml_min": controller.setpoint.flow_ml_min,
                "pressure_mmhg": controller.setpoint.pressure_mmhg,
                "volume_ul": controller.setpoint.volume_ul,
            },
            "primed": controller.primed,
            "fault": None if latched is None else latched.as_dict(),
            "devices": {device.name: device.connected for device in self.devices},
            "control": self.dispatcher.control.as_dict(),
            "last_stop": None if controller.last_stop is None else controller.last_stop.as_dict(),
            "procedure": self.procedures.as_dict(),
            "alarms": self.alarms.as_list(),
            "storage": self.storage.as_dict(),
            "basket": None if (basket := self._basket()) is None else basket.as_dict(),
            "camera": None if (camera := self._camera()) is None else camera.as_dict(),
            "loop_lateness_ms": self.stall_guard.lateness_ms(),
            "loop_scheduling": self.loop_scheduling,
        }

    def telemetry(self) -> JsonObject:
        controller = self.controller
        reading = controller.last_reading
        mean = controller.mean_pressure_mmhg
        return {
            "t_us": controller.last_sample_t_us,
            "wall_time": round(time.time(), 4),
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
            "links": {device.name: device.link.stats.as_dict() for device in self.devices},
            "basket": None if (basket := self._basket()) is None else basket.as_dict(),
            "camera": None if (camera := self._camera()) is None else camera.link.health.as_dict(),
        }


class _ShutdownRequestedError(Exception):
    pass


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
