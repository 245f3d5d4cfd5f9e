"""The simulated rig: the fluid world, the device models and their emulated serial ports.

One physics loop steps everything on one clock (about 1 kHz): the scenario acts on the world,
the I/O board's relay powers or cuts the pump, the pump model moves its plunger against the line
pressure, the world integrates the flow, and the board model samples the line pressure at
500 Hz and streams the samples. The device models speak the real wire protocols on the far end
of pseudo-terminals, so the host's drivers cannot tell this from a bench.

The simulator imports codecs and device models, never the rig.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from drivers.clock import REAL_CLOCK, Clock
from drivers.sim.camera.scene import DuctSceneParams
from drivers.sim.camera.stream import CameraSettings, SimCameraStream, WorldView
from drivers.sim.ioboard_device import IoBoardDevice
from drivers.sim.ne1000_device import COMMAND_KEYS, Ne1000Device, ReplyFault
from drivers.sim.pty import LinkFaults, PtyPort
from drivers.sim.scenarios import Scenario, make_scenario
from drivers.sim.usb.rig_bus import SimUsbRig, basket_stage
from drivers.sim.world import FluidWorld, FluidWorldParams
from drivers.transport.backoff import Backoff
from drivers.transport.mqtt import JsonObject, MqttEndpoint, Request, dumps

log = logging.getLogger(__name__)

PHYSICS_PERIOD_S = 0.001
MAX_STEP_S = 0.002
PUMPED_HISTORY_STEPS = 20_000
"""About 20 s of (time, syringe volume pushed) at the physics rate, for bolus measurements."""


DEFAULT_BAUDRATES: Mapping[str, int] = {"pump": 19200, "board": 460800}
SERIAL_DEVICES = (*DEFAULT_BAUDRATES, "basket")
"""The devices with a serial face: the basket's Tic has one when it is given a rate."""


@dataclass(frozen=True)
class SimSettings:
    link_dir: Path
    baudrates: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BAUDRATES))
    """Each emulated device's line rate, by device name (a profile's `devices.<name>.baudrate`)."""
    pump_address: int = 0
    syringe_diameter_mm: float = 14.57
    pressure_noise_mmhg: float = 0.2
    seed: int = 0
    camera: CameraSettings | None = None
    """The scope camera's stream (None: this rig has no camera)."""


def sim_command_topic(rig_id: str) -> str:
    """Control requests to the simulator (scenarios, link faults, observation)."""
    return f"sim/{rig_id}/cmd"


def sim_state_topic(rig_id: str) -> str:
    """The simulator's ground truth at 10 Hz: true pressures, flows, device states."""
    return f"sim/{rig_id}/state"


class SimError(ValueError):
    """A simulator control request that cannot be carried out."""


class RigSimulator:
    def __init__(self, settings: SimSettings, *, clock: Clock = REAL_CLOCK) -> None:
        self.settings = settings
        self._clock = clock
        self.world = FluidWorld(FluidWorldParams(), start_time_s=clock.monotonic())
        self.pump = Ne1000Device(
            address=settings.pump_address, syringe_diameter_mm=settings.syringe_diameter_mm
        )
        self.board = IoBoardDevice(noise_mmhg=settings.pressure_noise_mmhg, seed=settings.seed)
        self.pump_port = PtyPort(
            "pump",
            settings.baudrates["pump"],
            self._from_host_to_pump,
            link_dir=settings.link_dir,
            clock=clock,
            seed=settings.seed,
        )
        self.board_port = PtyPort(
            "board",
            settings.baudrates["board"],
            self._from_host_to_board,
            link_dir=settings.link_dir,
            clock=clock,
            seed=settings.seed + 1,
        )
        self.ports = {"pump": self.pump_port, "board": self.board_port}
        """The pseudo-terminals (the basket's too when it is on serial): unplugged by name."""
        self.usb = SimUsbRig(
            settings.link_dir,
            clock=clock,
            stage=basket_stage(
                DuctSceneParams().papilloma_depth_mm,
                (settings.camera or CameraSettings()).depth_mm,
            ),
            tic_serial_baudrate=settings.baudrates.get("basket"),
        )
        """The basket's Tic and the foot pedal, on a USB bus served next to the ptys."""
        self.camera = (
            None
            if settings.camera is None
            else SimCameraStream(settings.camera, settings.link_dir, self._camera_view)
        )
        """The scope camera, an MJPEG-over-HTTP stream (drivers/sim/camera/stream.py)."""
        if self.usb.tic_serial is not None:
            self.ports["basket"] = self.usb.tic_serial.port
        self.scenario: Scenario | None = None
        self.relay_welded = False
        """A relay whose contact has welded shut: the board opens it, the pump keeps its power."""
        self._scenario_started_s = 0.0
        self._last_step_s = clock.monotonic()
        self._pumped_history: deque[tuple[float, float]] = deque(maxlen=PUMPED_HISTORY_STEPS)
        # When the relay last opened and the motor last stopped, on CLOCK_MONOTONIC (which other
        # processes on this machine share): how tests time the device-side safety layers.
        self.relay_opened_at_s: float | None = None
        self.pump_stopped_at_s: float | None = None
        self.pump_stop_command_at_s: float | None = None
        """When the bytes of the command that stopped the running pump arrived."""
        self._relay_was_closed = False
        self._pump_was_running = False

    async def __aenter__(self) -> RigSimulator:
        self.settings.link_dir.mkdir(parents=True, exist_ok=True)
        for port in self.ports.values():
            await port.start()
        await self.usb.start()
        if self.camera is not None:
            self.camera.start()
        # Cold boot: the pump then ignores its first command and reports alarm R, as a real one
        # does after power-up, so the driver's handling of both runs on every simulated start.
        self.pump.power_off()
        self.pump.power_on(self._clock.monotonic())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.camera is not None:
            await asyncio.to_thread(self.camera.stop)
        await self.usb.stop()
        for port in self.ports.values():
            await port.stop()

    # -- bytes from the host ------------------------------------------------------------------

    def _from_host_to_pump(self, data: bytes, arrival_s: float) -> None:
        was_running = self.pump.running
        self.pump_port.send(self.pump.receive(data, arrival_s))
        if was_running and not self.pump.running:
            self.pump_stop_command_at_s = arrival_s

    def _from_host_to_board(self, data: bytes, arrival_s: float) -> None:
        # The world first, up to now: a real board samples on its own clock and is never behind
        # when it answers; the simulator's steps can be (its process starved, a step pending),
        # and a STATUS answered from an old step would show a watchdog trip as not yet happened.
        self.step(self._clock.monotonic())
        self.board_port.send(self.board.receive(data, arrival_s))
        self._power_pump(arrival_s)  # a relay command acts now, not at the next step

    def _camera_view(self) -> WorldView:
        """Read by the camera's feeder thread: the LED is the board's light output; the haze
        clears while the pump pushes saline; the basket shows once its loops leave the scope,
        and the lesion is gone from the wall once the basket has brought it back."""
        self.usb.track_lesion()
        return WorldView(
            led_level=self.board.light_permille / 1000.0,
            saline_flowing=self.pump.running and self.pump.flow_ml_min > 0,
            basket_deployed=self.usb.basket_past_tip(),
            lesion_present=not self.usb.lesion_retrieved,
        )

    # -- physics ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Step the world until cancelled."""
        self._last_step_s = self._clock.monotonic()
        while True:
            self.step(self._clock.monotonic())
            await asyncio.sleep(PHYSICS_PERIOD_S)

    def step(self, now_s: float) -> None:
        dt_s = now_s - self._last_step_s
        if dt_s <= 0:
            return
        self._last_step_s = now_s
        if self.scenario is not None:
            self.scenario.apply(self.world, now_s - self._scenario_started_s)
        self._power_pump(now_s)
        while dt_s > 0:
            h = min(dt_s, MAX_STEP_S)
            self.pump.advance(h, self.world.line_pressure_mmhg)
            self.world.set_pump_flow(self.pump.flow_ml_min)
            self.world.step(h)
            dt_s -= h
        self._pumped_history.append((now_s, self.world.pumped_ml))
        self.board_port.send(self.board.advance(now_s, self.world.line_pressure_mmhg))
        # A trip in that advance (watchdog, cut-off, resistance) cuts the pump's power now: the
        # state read between two steps never shows the relay open and the pump still powered.
        self._power_pump(now_s)

    def _power_pump(self, now_s: float) -> None:
        """The pump is powered exactly while the relay is closed (or welded shut); note the
        relay's and the pump's edges when they happen."""
        powered = self.board.relay_closed or self.relay_welded
        if powered and not self.pump.powered:
            self.pump.power_on(now_s)
        elif not powered and self.pump.powered:
            self.pump.power_off()
        self._note_edges(now_s)

    def _note_edges(self, now_s: float) -> None:
        relay_closed, running = self.board.relay_closed, self.pump.running
        if self._relay_was_closed and not relay_closed:
            self.relay_opened_at_s = now_s
        if self._pump_was_running and not running:
            self.pump_stopped_at_s = now_s
        self._relay_was_closed, self._pump_was_running = relay_closed, running

    def pumped_since(self, t_s: float) -> float:
        """Net volume (mL) the syringe pushed into the line after time `t_s`.

        Whatever the syringe pushed after the moment the hazard showed either went into the duct
        or sits in the line's compliance and drains into it afterwards: it is the bolus the
        patient gets, unless a relief withdraw takes some back.
        """
        history = self._pumped_history
        if not history or t_s < history[0][0]:
            raise SimError(
                f"t_s = {t_s}: expected a time within the last {PUMPED_HISTORY_STEPS} physics steps"
            )
        before = history[0][1]
        for time_s, pumped_ml in reversed(history):
            if time_s <= t_s:
                before = pumped_ml
                break
        return self.world.pumped_ml - before

    # -- control (scenarios, faults, observation) ---------------------------------------------

    def start_scenario(self, name: str, **params: float) -> None:
        self.scenario = make_scenario(name, **params)
        self._scenario_started_s = self._clock.monotonic()

    def clear(self) -> None:
        """Back to a healthy duct: baseline resistances, no scenario, no link faults."""
        self.scenario = None
        self.world.clear()
        self.pump.reply_faults.clear()
        for port in self.ports.values():
            port.faults = LinkFaults()
            if not port.plugged:
                port.plug()
        self.usb.plug_all()
        if self.camera is not None:
            self.camera.plug()

    def port(self, device: str) -> PtyPort:
        try:
            return self.ports[device]
        except KeyError:
            known = sorted([*self.ports, *self.usb.devices, *(["camera"] if self.camera else [])])
            raise SimError(f"device = {device!r}: expected one of {known}") from None

    def state(self) -> dict[str, Any]:
        return {
            "t_s": self._clock.monotonic(),
            "world": self.world.snapshot(),
            "scenario": None if self.scenario is None else self.scenario.name,
            "pump": {
                "powered": self.pump.powered,
                "running": self.pump.running,
                "flow_ml_min": self.pump.flow_ml_min,
                "alarm": None if self.pump.alarm is None else self.pump.alarm.name,
                "last_stop_reason": self.pump.last_stop_reason,
                "infused_ml": self.pump.infused_ml,
                "plugged": self.pump_port.plugged,
                "stopped_at_s": self.pump_stopped_at_s,
                "stop_command_at_s": self.pump_stop_command_at_s,
            },
            "board": {
                "relay_closed": self.board.relay_closed,
                "relay_welded": self.relay_welded,
                "relay_opened_at_s": self.relay_opened_at_s,
                "trips": sorted(str(trip.name).lower() for trip in self.board.trips),
                "plugged": self.board_port.plugged,
            },
            **self.usb.state(),
            "camera": None if self.camera is None else self.camera.state(),
        }

    def _pump_fault(self, request: dict[str, Any]) -> dict[str, Any]:
        """Set the pump faults the request names; those it does not name stay as they are."""
        pump = self.pump
        if "ignores_stop" in request:
            pump.ignores_stop = bool(request["ignores_stop"])
        if "own_power_supply" in request:
            pump.own_power_supply = bool(request["own_power_supply"])
        if "reply_fault" in request:
            fault = request["reply_fault"]
            if not isinstance(fault, dict):
                raise SimError(f"reply_fault = {fault!r}: expected {{command, kind}}")
            command, kind = str(fault.get("command")), str(fault.get("kind"))
            if command not in COMMAND_KEYS:
                raise SimError(f"reply_fault.command = {command!r}: expected one of {COMMAND_KEYS}")
            try:
                pump.reply_faults[command] = ReplyFault(kind)
            except ValueError:
                kinds = [k.value for k in ReplyFault]
                raise SimError(f"reply_fault.kind = {kind!r}: expected one of {kinds}") from None
        return {
            "ignores_stop": pump.ignores_stop,
            "own_power_supply": pump.own_power_supply,
            "reply_faults": {k: v.value for k, v in pump.reply_faults.items()},
        }

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control request (a JSON object with an `op`); returns the result object."""
        op = request.get("op")
        if op == "state":
            return self.state()
        if op == "scenario":
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise SimError(f"params = {params!r}: expected an object")
            self.start_scenario(
                str(request.get("name")), **{str(k): float(v) for k, v in params.items()}
            )
            return {"scenario": request.get("name")}
        if op == "clear":
            self.clear()
            return {}
        if op == "link_fault":
            port = self.port(str(request.get("device")))
            fields = {
                k: request[k]
                for k in ("latency_s", "drop_probability", "corrupt_probability", "silent")
                if k in request
            }
            port.faults = LinkFaults(**fields)
            return {"device": port.name, "faults": vars(port.faults)}
        if op == "unplug":
            device = str(request.get("device"))
            if device == "camera" and self.camera is not None:
                self.camera.unplug()
            elif device in self.usb.devices and device not in self.ports:
                self.usb.unplug(device)
            else:
                self.port(device).unplug()
            return {}
        if op == "replug":
            device = str(request.get("device"))
            if device == "camera" and self.camera is not None:
                self.camera.plug()
            elif device in self.usb.devices and device not in self.ports:
                self.usb.plug(device)
            else:
                self.port(device).plug()
            return {}
        if op == "pedal":
            report_at_s = self.usb.press(
                str(request.get("action")),
                str(request.get("pedal", "left")),
                int(request.get("times", 1)),
            )
            return {
                "down": sorted(p.value for p in self.usb.pedal.down),
                "report_at_s": report_at_s,
            }
        if op == "basket_obstacle":
            at = request.get("at_usteps")
            if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
                raise SimError(f"at_usteps = {at!r}: expected a number of usteps, or null")
            self.usb.place_obstacle(None if at is None else float(at))
            return {"obstacle_usteps": at}
        if op == "sensor_fault":
            board = self.board
            board.sensor_disconnected = bool(request.get("disconnected", False))
            board.sensor_stuck = bool(request.get("stuck", False))
            board.sensor_offset_mmhg = float(request.get("offset_mmhg", 0.0))
            board.pressure_offset_drift_mmhg_per_s = float(request.get("drift_mmhg_per_s", 0.0))
            return {
                "disconnected": board.sensor_disconnected,
                "stuck": board.sensor_stuck,
                "offset_mmhg": board.sensor_offset_mmhg,
                "drift_mmhg_per_s": board.pressure_offset_drift_mmhg_per_s,
            }
        if op == "pump_fault":
            return self._pump_fault(request)
        if op == "relay_welded":
            self.relay_welded = bool(request.get("welded", True))
            return {"relay_welded": self.relay_welded}
        if op == "estop":
            if request.get("pressed", True):
                self.board.press_estop()
            else:
                self.board.release_estop()
            return {}
        if op == "volume_since":
            t_s = float(request["t_s"])
            return {
                "into_duct_ml": self.world.into_duct_since(t_s),
                "pumped_ml": self.pumped_since(t_s),
            }
        raise SimError(
            f"op = {op!r}: expected one of state, scenario, clear, link_fault, unplug, replug, "
            "pedal, basket_obstacle, relay_welded, sensor_fault, pump_fault, estop, volume_since"
        )


async def serve_forever(
    sim: RigSimulator,
    broker_host: str,
    broker_port: int,
    rig_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    on_serving: Callable[[], None] | None = None,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run the simulator with its control topics on the broker (the `rig sim` process).

    `stopping`, set with the cancellation that ends it (SIGTERM): a cancellation that meets the
    broker's loss is dropped by Python 3.11's TaskGroup, which raises the loss instead, and
    reconnecting then would keep the process alive for ever (the launcher's children all told
    to stop at once, the broker among them).

    `on_serving` is called once the control topic is first subscribed: only then may anyone be
    told the simulator is ready, or their first request would go to nobody. The physics runs
    whether or not the broker is there; a lost connection is retried with back-off.
    """

    async def on_request(request: Request) -> JsonObject:
        try:
            body = json.loads(request.payload)
            if not isinstance(body, dict):
                raise SimError("expected a JSON object")
            return {"ok": True, "result": sim.handle(body)}
        except (ValueError, KeyError, TypeError) as exc:
            return {"ok": False, "error": {"code": "invalid", "message": str(exc)}}

    async def serve_control() -> None:
        backoff = Backoff(maximum_s=1.0)
        serving = on_serving
        while True:
            try:
                async with MqttEndpoint(
                    broker_host,
                    broker_port,
                    name=f"sim-{rig_id}",
                    username=username,
                    password=password,
                ) as mqtt:
                    await mqtt.serve(sim_command_topic(rig_id), on_request)
                    backoff.reset()
                    if serving is not None:
                        serving()
                        serving = None
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(mqtt.wait_lost())
                        while True:
                            await mqtt.publish(sim_state_topic(rig_id), dumps(sim.state()))
                            await asyncio.sleep(0.1)
            except* aiomqtt.MqttError as group:
                if stopping is None or not stopping.is_set():
                    log.warning("broker connection lost (%s); reconnecting", group.exceptions[0])
            if stopping is not None and stopping.is_set():
                return
            await asyncio.sleep(backoff.next_delay_s())

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(sim.run())
        tasks.create_task(serve_control())
