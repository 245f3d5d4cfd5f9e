"""The client commands: `rig status`, `rig fluid ...`, `rig basket ...`, `rig fault reset`,
`rig estop`, `rig selftest` (`rig watch` and `rig simctl` have modules of their own).

Each is an MQTT client of the daemon. It finds the broker from `--broker`, else from the rig
that `rig sim` started (rig.runtime), else from the default profile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiomqtt import MqttCodeError, MqttError

from drivers.transport.mqtt import BrokerRefusedError, JsonObject, MqttEndpoint, RequestTimeoutError
from rig.api.roles import Role, load_credentials
from rig.api.topics import RigTopics
from rig.cli.ranges import help_ranges
from rig.config import DEFAULT_PROFILE, ProfileError, load_profile
from rig.runtime import RunningRig

EXIT_ERROR_REPLY = 1
EXIT_NO_DAEMON = 3
EXIT_REFUSED = 4
"""The broker refused the login or the topic: the rig may be running, the client may not."""
DEFAULT_TIMEOUT_S = 3.0
SELFTEST_TIMEOUT_S = 30.0
"""The self-test lets the pump's safe-mode timeout and the board's watchdog run out: seconds."""


class ClientError(Exception):
    """A client command that cannot go on: the message for the user, and the exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ranges = help_ranges()
    status = subparsers.add_parser("status", help="the rig's state: mode, latched fault, devices")
    connection_options(status)
    status.set_defaults(func=lambda a: run_client(_status(a)))

    fluid = subparsers.add_parser("fluid", help="command the saline/contrast pump")
    fluid_sub = fluid.add_subparsers(dest="fluid_command", required=True, metavar="MODE")
    irrigate = fluid_sub.add_parser(
        "irrigate", help="irrigate at a flow (backs off near the pressure cap)"
    )
    irrigate.add_argument("--flow-ml-min", type=float, required=True, help=ranges.flow)
    pressure = fluid_sub.add_parser("hold-pressure", help="hold a pressure (flow-limited)")
    pressure.add_argument("--mmhg", type=float, required=True, help=ranges.pressure)
    bolus = fluid_sub.add_parser(
        "bolus", help="ductography: a metered contrast volume at a rate, from rest"
    )
    bolus.add_argument("--volume-ml", type=float, required=True, help=ranges.bolus_volume)
    bolus.add_argument("--rate-ml-min", type=float, required=True, help=ranges.bolus_rate)
    fluid_sub.add_parser("prime", help=ranges.prime)
    fluid_sub.add_parser("stop", help="stop the pump now (never refused, does not latch)")
    for sub in fluid_sub.choices.values():
        connection_options(sub)
        sub.set_defaults(func=lambda a: run_client(_fluid(a)))

    basket = subparsers.add_parser(
        "basket", help="the lesion basket: open, close on the lesion (needs live video), retract"
    )
    basket_sub = basket.add_subparsers(dest="basket_command", required=True, metavar="MOVE")
    basket_sub.add_parser("open", help="deploy the basket open (a captured lesion is released)")
    basket_sub.add_parser(
        "close", help="close the open basket; on the lesion it holds it and reports captured"
    )
    basket_sub.add_parser("retract", help="draw the basket back into the channel, with its catch")
    basket_sub.add_parser(
        "home", help="home the basket against its reverse switch (its position unknown: unhomed)"
    )
    for sub in basket_sub.choices.values():
        connection_options(sub)
        sub.set_defaults(
            func=lambda a: run_client(_request(a, {"op": f"basket.{a.basket_command}"}))
        )

    fault = subparsers.add_parser("fault", help="latched faults")
    fault_sub = fault.add_subparsers(dest="fault_command", required=True, metavar="ACTION")
    reset = fault_sub.add_parser(
        "reset", help="clear the latched fault or e-stop; the rig comes back stopped at zero flow"
    )
    connection_options(reset)
    reset.set_defaults(func=lambda a: run_client(_request(a, {"op": "fault.reset"})))

    estop = subparsers.add_parser(
        "estop",
        help="emergency stop: everything stops at once and latches (`rig fault reset` clears it)",
    )
    connection_options(estop)
    estop.add_argument(
        "--source",
        default="rig estop",
        help="who or what stops the rig, 1 to 64 characters, recorded with the stop "
        "(default: rig estop)",
    )
    estop.set_defaults(func=lambda a: run_client(_request(a, {"op": "estop", "source": a.source})))

    selftest = subparsers.add_parser(
        "selftest",
        help="run the self-test again (engineer): each device's own safety is made to act once",
    )
    connection_options(selftest, timeout_s=SELFTEST_TIMEOUT_S)
    selftest.set_defaults(func=lambda a: run_client(_request(a, {"op": "selftest.run"})))

    alarm = subparsers.add_parser("alarm", help="the rig's alarms (docs/alarms.md)")
    alarm_sub = alarm.add_subparsers(dest="alarm_command", required=True, metavar="ACTION")
    ack = alarm_sub.add_parser(
        "ack",
        help="acknowledge: pause an alarm's sound for 120 s; it stays shown while its cause lasts",
    )
    ack.add_argument("--alarm", help="the alarm's id (default: every active alarm)")
    connection_options(ack)
    ack.set_defaults(
        func=lambda a: run_client(
            _request(a, {"op": "alarm.ack", **({} if a.alarm is None else {"alarm": a.alarm})})
        )
    )

    camera = subparsers.add_parser("camera", help="the scope camera: snapshots and recording")
    camera_sub = camera.add_subparsers(dest="camera_command", required=True, metavar="ACTION")
    snapshot = camera_sub.add_parser(
        "snapshot",
        help="save a still with the pressure, flow and volume now, into the record (media/)",
    )
    snapshot.add_argument("--note", default="", help='what it shows, e.g. "empty duct"')
    snapshot.set_defaults(
        func=lambda a: run_client(_request(a, {"op": "camera.snapshot", "note": a.note}))
    )
    record = camera_sub.add_parser(
        "record", help="start or stop recording the video to segments in the record"
    )
    record.add_argument("recording", choices=("start", "stop"))
    record.set_defaults(
        func=lambda a: run_client(_request(a, {"op": "camera.record", "recording": a.recording}))
    )
    for sub in camera_sub.choices.values():
        connection_options(sub)

    control = subparsers.add_parser(
        "control",
        help="which station commands the rig: the console takes control during a procedure; "
        "this command line then commands the fluid only after taking it over",
    )
    control_sub = control.add_subparsers(dest="control_command", required=True, metavar="ACTION")
    take = control_sub.add_parser("take", help="take control of the rig for this station (role)")
    take.add_argument(
        "--force",
        action="store_true",
        help="take it over from the station that has it (the handover is recorded)",
    )
    take.set_defaults(
        func=lambda a: run_client(_request(a, {"op": "control.take", "force": a.force}))
    )
    release = control_sub.add_parser(
        "release", help="give up control: any station may command the rig again"
    )
    release.set_defaults(func=lambda a: run_client(_request(a, {"op": "control.release"})))
    for sub in control_sub.choices.values():
        connection_options(sub)


def connection_options(
    parser: argparse.ArgumentParser, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> None:
    parser.add_argument(
        "--broker", help="HOST:PORT (default: the rig `rig sim` started, else the profile's)"
    )
    parser.add_argument("--rig-id", help="default: the running rig's, else the profile's")
    parser.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.ENGINEER.value,
        help="who is asking (default engineer); the broker holds each role to its own topic",
    )
    parser.add_argument(
        "--user",
        help="the broker user to log in as (default: the role's name, as `rig sim`'s broker "
        "has them; a site broker's users come from `rig users add`)",
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        help="JSON user -> password (default: the running simulated rig's)",
    )
    parser.add_argument(
        "--tls-ca", type=Path, help="CA file: connect with TLS and verify the broker"
    )
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout_s,
        help=f"seconds to wait for an answer (default {timeout_s:g})",
    )


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    rig_id: str
    role: Role
    username: str | None
    password: str | None
    tls_ca_file: Path | None
    source: str = "--broker"
    """Where the broker's address came from, for error messages."""

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[MqttEndpoint]:
        """A connection to the broker; its failures become ClientErrors that say which broker,
        found how, and whether it is missing or refused us."""
        address = f"{self.host}:{self.port} ({self.source})"
        async with contextlib.AsyncExitStack() as stack:
            try:
                mqtt = await stack.enter_async_context(self.endpoint())
            except MqttCodeError as exc:  # a CONNACK with a failure reason
                raise ClientError(
                    f"the broker at {address} refused the login as {self.role.value}: {exc} "
                    "(check --role and --credentials)",
                    EXIT_REFUSED,
                ) from None
            except (MqttError, OSError) as exc:
                raise ClientError(
                    f"cannot reach the broker at {address}: {exc}; is the rig running? (`rig sim`)",
                    EXIT_NO_DAEMON,
                ) from None
            try:
                yield mqtt
            except BrokerRefusedError as exc:
                raise ClientError(
                    f"{exc}: the {self.role.value} role may not do this (roles: docs/api.md)",
                    EXIT_REFUSED,
                ) from None

    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            tls_ca_file=self.tls_ca_file,
        )

    @property
    def commands(self) -> str:
        return RigTopics(self.rig_id).commands_for(self.role)


def target_of(args: argparse.Namespace) -> Target:
    running = RunningRig.load()
    host, port, rig_id = None, None, args.rig_id
    source = "--broker"
    if args.broker:
        host, _, port_text = args.broker.rpartition(":")
        port = int(port_text)
    elif running is not None:
        host, port = running.broker_host, running.broker_port
        source = f"the running rig's note {RunningRig.path()}"
    if rig_id is None and running is not None:
        rig_id = running.rig_id
    if host is None or rig_id is None:
        try:
            profile = load_profile(DEFAULT_PROFILE)
        except ProfileError as exc:
            raise SystemExit(
                f"no running rig found and the default profile is invalid:\n{exc}"
            ) from None
        if host is None:
            source = f"the default profile {DEFAULT_PROFILE.name}: no `rig sim` is running"
        host = host or profile.broker.host
        port = port or profile.broker.port
        rig_id = rig_id or profile.rig_id
    assert port is not None
    role = Role(args.role)
    credentials_file = args.credentials
    if credentials_file is None and running is not None and running.credentials_file:
        credentials_file = Path(running.credentials_file)
    username = password = None
    if credentials_file is not None:
        username = args.user or role.value
        try:
            password = load_credentials(credentials_file).get(username)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"cannot read credentials: {exc}") from None
    return Target(host, port, rig_id, role, username, password, args.tls_ca, source)


def run_client(coroutine: Any, *, peer: str = "the daemon") -> int:
    """Run a client command; a silent `peer` or an unreachable broker is exit 3, a refusal by
    the broker exit 4, each explained in one line (never a traceback)."""
    try:
        result: int = asyncio.run(coroutine)
        return result
    except KeyboardInterrupt:
        return 0
    except ClientError as exc:
        print(f"rig: {exc}", file=sys.stderr)
        return exc.exit_code
    except RequestTimeoutError as exc:
        print(f"no answer from {peer} ({exc}); is the rig running? (`rig sim`)", file=sys.stderr)
        return EXIT_NO_DAEMON
    except MqttError as exc:
        print(f"lost the broker: {exc}; is the rig still running?", file=sys.stderr)
        return EXIT_NO_DAEMON
    except OSError as exc:  # a local file: a --csv log, a credentials file
        print(f"rig: {exc}", file=sys.stderr)
        return EXIT_ERROR_REPLY


async def _request(args: argparse.Namespace, command: JsonObject) -> int:
    target = target_of(args)
    async with target.connect() as mqtt:
        reply = await mqtt.request(target.commands, command, timeout_s=args.timeout)
    return print_reply(reply, args.json, lambda result: _describe_ok(command["op"], result))


def print_reply(reply: JsonObject, as_json: bool, describe: Callable[[JsonObject], str]) -> int:
    """The one output style of every request: the whole reply with --json, else a few plain
    lines on stdout (`describe` of the result) or `refused (code): message` on stderr."""
    if as_json:
        print(json.dumps(reply, indent=2))
    elif reply.get("ok"):
        print(describe(reply.get("result") or {}))
    else:
        error = reply.get("error") or {}
        details = reply.get("result")
        if details:
            print(describe(details))
        print(f"refused ({error.get('code')}): {error.get('message')}", file=sys.stderr)
    return 0 if reply.get("ok") else EXIT_ERROR_REPLY


def _describe_ok(op: str, result: JsonObject) -> str:
    match op:
        case "fault.reset":
            cleared = result.get("cleared")
            return (
                "no fault was latched"
                if cleared is None
                else f"cleared: {cleared['cause']}: {cleared['message']}"
            )
        case "estop":
            return (
                f"e-stop: state {result.get('state')}; everything stopped and latched "
                "(clear it with `rig fault reset`)"
            )
        case "alarm.ack":
            silenced = result.get("acknowledged") or []
            return f"acknowledged: {', '.join(silenced) if silenced else 'no active alarm'}"
        case "camera.snapshot":
            return f"snapshot: {result.get('path')} (in the record directory)"
        case "camera.record":
            return f"recording: {'on' if result.get('recording') else 'off'}"
        case "control.take" | "control.release":
            holder = (result.get("control") or {}).get("holder")
            return f"control: {holder or 'nobody'}"
        case "basket.open" | "basket.close" | "basket.retract" | "basket.home":
            return _describe_basket(result.get("basket") or {})
        case "selftest.run":
            lines = [f"self-test {'passed' if result.get('passed') else 'FAILED'}"]
            for check in result.get("checks", []):
                mark = "ok  " if check.get("passed") else "FAIL"
                lines.append(f"  {mark} {check.get('name'):<24} {check.get('detail')}")
            return "\n".join(lines)
    return f"ok: mode {result.get('mode')}"


def _describe_basket(basket: JsonObject) -> str:
    holds = "  (holds the lesion)" if basket.get("holds_lesion") else ""
    return f"basket: {basket.get('state')} at {basket.get('position_usteps')} usteps{holds}"


async def _fluid(args: argparse.Namespace) -> int:
    match args.fluid_command:
        case "irrigate":
            command: JsonObject = {"op": "fluid.irrigate", "flow_ml_min": args.flow_ml_min}
        case "hold-pressure":
            command = {"op": "fluid.hold_pressure", "pressure_mmhg": args.mmhg}
        case "bolus":
            command = {
                "op": "fluid.bolus",
                "volume_ml": args.volume_ml,
                "rate_ml_min": args.rate_ml_min,
            }
        case _:
            command = {"op": f"fluid.{args.fluid_command}"}
    return await _request(args, command)


async def _status(args: argparse.Namespace) -> int:
    """Read the retained state: any role may, and a dead daemon shows as its last will."""
    target = target_of(args)
    async with target.connect() as mqtt:
        states = await mqtt.subscribe(RigTopics(target.rig_id).state)
        try:
            async with asyncio.timeout(args.timeout):
                message = await states.get()
        except TimeoutError:
            raise RequestTimeoutError(f"no state on {RigTopics(target.rig_id).state}") from None
    state = json.loads(message.payload or b"{}")
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    fault = state.get("fault")
    devices = state.get("devices", {})
    print(f"rig {state.get('rig_id')}: {'online' if state.get('online') else 'OFFLINE'}")
    if not state.get("online"):
        return EXIT_NO_DAEMON
    print(f"  state    {state.get('state')}")
    print(f"  mode     {state.get('mode')}  (primed: {'yes' if state.get('primed') else 'no'})")
    print("  devices  " + "  ".join(f"{k} {'up' if v else 'DOWN'}" for k, v in devices.items()))
    holder = (state.get("control") or {}).get("holder")
    print(f"  control  {holder or 'nobody (any station may command)'}")
    print(
        "  fault    "
        + (
            "none"
            if fault is None
            else f"{fault['cause']}: {fault['message']} (reset with `rig fault reset`)"
        )
    )
    basket = state.get("basket")
    if basket is not None:
        print("  " + _describe_basket(basket))
    last = state.get("last_stop")
    if last is not None:
        print(f"  last stop {last['cause']}: {last['message']}")
    lateness = state.get("loop_lateness_ms")
    print(
        f"  loop     {state.get('loop_scheduling')}"
        + (
            ""
            if not lateness
            else f", wakes late p99 {lateness['p99']} ms (max {lateness['max']}) over the last "
            f"{lateness['window_s']} s"
        )
    )
    camera = state.get("camera")
    if camera is not None:
        live = "live" if camera.get("live") else "NO VIDEO"
        print(
            f"  camera   {live}, {camera.get('fps')} fps, {camera.get('dropped_frames')} dropped"
            f"{', recording' if camera.get('recording') else ''}"
        )
    return 0
