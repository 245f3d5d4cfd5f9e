"""`rig simctl`: drive the simulator from the command line (scenarios, fault injection, ground
truth), as the system tests do over the simulator's control topic.

    rig simctl scenario tip_against_wall delay_s=0 factor=12
    rig simctl link-fault pump drop_probability=0.05
    rig simctl sensor drift_mmhg_per_s=0.1
    rig simctl pedal press pedal=left       (then: pedal release)
    rig simctl unplug pedal
    rig simctl basket-obstacle at_usteps=2000   (the duct wall in the basket's way; null: none)
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
from rig.cli.client_cmds import connection_options, print_reply, run_client, target_of

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
    "pedal": "action",
    "basket-obstacle": None,
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
    return print_reply(reply, args.json, lambda result: "\n".join(describe_result(result)))


def describe_result(result: JsonObject) -> list[str]:
    """The simulator's answer as plain lines, as the other commands print theirs: `ok: k v` for
    a flat answer, one `key  value` line per field (nested fields indented) otherwise."""
    if not any(isinstance(value, dict) for value in result.values()):
        return [
            "ok"
            + (": " if result else "")
            + ", ".join(f"{key} {_plain(value)}" for key, value in result.items())
        ]
    return _tree(result, "")


def _tree(result: JsonObject, indent: str) -> list[str]:
    width = max((len(key) for key in result), default=0)
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}")
            lines.extend(_tree(value, indent + "  "))
        else:
            lines.append(f"{indent}{key:<{width}}  {_plain(value)}")
    return lines


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
