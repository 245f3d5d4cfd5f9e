"""The saline pump (NE-1000 family on RS-232) as a device of the rig.

Its section is `[devices.pump]` (rig/devices/pump_config.py). The driver's actuators go to the
interlock; this module keeps the link facet: it connects and configures the pump (the syringe's
diameter, through the interlock), judges the alarm the pump reports at connect, and reads what
the pump has dispensed for the fluid loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.ne1000 import (
    AlarmKind,
    AlarmReply,
    ErrorReply,
    Ne1000Pump,
    PumpError,
    PumpStatus,
    PumpTimeoutError,
)
from drivers.transport.serial import LinkClosedError
from rig.devices.contract import Device, DeviceContext, ResetNotes, Task
from rig.devices.pump_config import PumpDeviceConfig
from rig.events.models import PumpPoweredUp, PumpSelfTestSilence
from rig.fluid.controller import PumpReading
from rig.fluid.events import StopCause
from rig.safety.interlock import ActuatorSlots, InterlockDeniedError, PumpFaultError
from rig.safety.links import PumpLink
from rig.safety.states import RigState


class PumpDevice(Device):
    name = "pump"
    connect_errors = (LinkClosedError, PumpError, OSError, InterlockDeniedError)

    def __init__(self, config: PumpDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(context)
        self._driver: Ne1000Pump | None = Ne1000Pump(
            port,
            baudrate=config.baudrate,
            address=config.address,
            safe_mode_timeout_s=config.safe_mode_timeout_s,
            reply_timeout_s=config.reply_timeout_ms / 1000.0,
            clock=context.clock,
        )
        self._link = PumpLink(self._driver)

    @property
    def link(self) -> PumpLink:
        return self._link

    def provide(self, slots: ActuatorSlots) -> None:
        # The driver goes to the interlock once; this device keeps only its link facet.
        driver, self._driver = self._driver, None
        if driver is None:
            raise RuntimeError("the pump's driver was already handed to an interlock")
        slots.pump = driver

    async def configure(self) -> None:
        await self.context.interlock.configure_pump(
            syringe_diameter_mm=self.context.profile.syringe.inner_diameter_mm
        )
        self._judge_alarm_at_connect(self._link.last_alarm)

    def _judge_alarm_at_connect(self, alarm: AlarmKind | None) -> None:
        controller, interlock = self.context.controller, self.context.interlock
        if alarm is AlarmKind.RESET and not controller.pump_running:
            # The pump powered up (its relay closes when the board connects): expected.
            self.context.record(PumpPoweredUp(alarm=alarm.name))
        elif (
            alarm is AlarmKind.SAFE_MODE_TIMEOUT
            and interlock.state is RigState.SELF_TEST
            and not controller.pump_running
        ):
            # The self-test's own silence: a pump on a supply of its own (not behind the
            # board's relay, as on a hybrid bench) is still powered at the re-arm and reports
            # the host's deliberate silence here. No fluid moved; nothing to latch.
            self.context.record(PumpSelfTestSilence(alarm=alarm.name))
        elif alarm is not None:
            # A safe-mode timeout (T), a stall (S), or a power loss while fluid moved: the
            # pump stopped on its own, and someone must see why before it runs again.
            self.context.trip(
                StopCause.PUMP_ALARM,
                f"pump reported alarm {alarm.name} at connect",
                figures={"alarm": alarm.name},
            )

    def tasks(self) -> Sequence[Task]:
        # The fluid loop polls this pump (which also feeds its safe-mode timeout).
        return [("fluid actuation", self._run_fluid_loop)]

    async def _run_fluid_loop(self) -> None:
        await self.context.controller.run_actuation(self.read)

    def on_lost(self) -> None:
        self.context.trip_if_moving(StopCause.PUMP_LINK_LOST, "pump link lost while fluid moved")

    async def after_reset(self, notes: ResetNotes) -> None:
        if notes.pump_power_restored and self.connected:
            # The pump has just been powered up again and booted in basic mode: reconnect it
            # so that its supervisor puts it back into safe mode.
            await self._link.close()

    async def read(self) -> PumpReading:
        """What the pump has dispensed, for the fluid loop; a refusal is a pump fault."""
        try:
            dispensed = await self._link.dispensed()
        except PumpTimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        except PumpError as exc:
            raise PumpFaultError(str(exc)) from exc
        stop_reply = self._link.take_stop_reply()
        if isinstance(stop_reply, AlarmReply | ErrorReply):
            # The fault path's stop is written without waiting for its answer; an alarm or a
            # refusal in that answer is seen here, and latched like any other pump fault.
            self.context.trip(
                StopCause.PUMP_ALARM, f"the pump answered its stop command with {stop_reply}"
            )
        return PumpReading(float(dispensed.infused_ml), dispensed.status is PumpStatus.INFUSING)
