"""`rig simctl`: drive the simulator from the command line (scenarios, fault injection, ground
truth), as the system tests do over the simulator's control topic.

    rig simctl scenario tip_against_wall delay_s=0 factor=12
    rig simctl link-fault pump drop_probability=0.05
    rig simctl sensor drift_mmhg_per_s=0.1
    rig simctl clear
    rig simctl state

A bare word is the op's subject (the scenario's name, the device of a link fault or cable); each
KEY=VALUE is a field, its value read as JSON when it parses (numbers, true/false) and as text
otherwise. Engineers only: the broker's ACL lets no other role write the simulator's topic.
"""

from __future__ import annotations

import argparse
import json
import sys

from drivers.sim.rig_sim import sim_command_topic
from drivers.transport.mqtt import JsonObject
from rig.cli.client_cmds import EXIT_ERROR_REPLY, connection_options, run_client, target_of

SUBJECTS = {
    "state": None,
    "scenario": "name",
    "clear": None,
    "link-fault": "device",
    "unplug": "device",
    "replug": "device",
    "sensor": None,
    "pump-fault": None,
    "relay-welded": None,
    "estop": None,
}
"""The CLI's ops, and the field a bare word fills."""
SIM_OPS = {"sensor": "sensor_fault"}
"""CLI names that are not the simulator's op with '-' for '_'."""


class SimctlUsageError(ValueError):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simctl = subparsers.add_parser(
        "simctl",
        help="drive the simulator: scenarios, link and sensor faults, its ground truth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simctl.add_argument("op", choices=list(SUBJECTS), metavar="OP", help=", ".join(SUBJECTS))
    simctl.add_argument("words", nargs="*", metavar="SUBJECT|KEY=VALUE")
    connection_options(simctl)
    simctl.set_defaults(func=_simctl)


def build_request(op: str, words: list[str]) -> JsonObject:
    """The control request for `rig simctl OP WORDS...`."""
    subject_field = SUBJECTS[op]
    request: JsonObject = {"op": SIM_OPS.get(op, op.replace("-", "_"))}
    fields: JsonObject = {}
    for word in words:
        key, equals, text = word.partition("=")
        if not equals:
            if subject_field is None or subject_field in request:
                raise SimctlUsageError(f"{word!r}: expected KEY=VALUE")
            request[subject_field] = word
            continue
        if not key:
            raise SimctlUsageError(f"{word!r}: expected KEY=VALUE with a key")
        try:
            fields[key] = json.loads(text)
        except ValueError:
            fields[key] = text
    if subject_field is not None and subject_field not in request:
        raise SimctlUsageError(f"{op} needs its {subject_field}")
    if op == "scenario":
        request["params"] = fields
    else:
        request.update(fields)
    return request


def _simctl(args: argparse.Namespace) -> int:
    try:
        request = build_request(args.op, args.words)
    except SimctlUsageError as exc:
        print(f"rig simctl {args.op}: {exc}", file=sys.stderr)
        return 2
    return run_client(_send(args, request), peer="the simulator")


async def _send(args: argparse.Namespace, request: JsonObject) -> int:
    target = target_of(args)
    async with target.connect() as mqtt:
        reply = await mqtt.request(
            sim_command_topic(target.rig_id), request, timeout_s=args.timeout
        )
    if reply.get("ok"):
        print(json.dumps(reply.get("result"), indent=None if args.json else 2))
        return 0
    error = reply.get("error") or {}
    print(f"refused ({error.get('code')}): {error.get('message')}", file=sys.stderr)
    return EXIT_ERROR_REPLY
