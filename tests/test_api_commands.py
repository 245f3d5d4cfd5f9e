"""The API's command parser: every payload is either a typed command or a CommandError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.api.commands import OPS, ROLE_OPS, Bolus, CommandError, Irrigate, parse_command, role_may
from rig.api.roles import Role
from rig.safety.rules import Action

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
OP_NAMES = st.sampled_from([*sorted(OPS), "fluid.flood", ""])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_command_or_a_command_error(payload: bytes) -> None:
    try:
        parse_command(payload)
    except CommandError as exc:
        assert exc.code == "invalid" and str(exc)


@settings(max_examples=400, deadline=None)
@given(
    OP_NAMES,
    st.dictionaries(
        st.sampled_from(["flow_ml_min", "pressure_mmhg", "volume_ml", "rate_ml_min", "x"]),
        JSON_VALUES,
        max_size=3,
    ),
)
def test_plausible_objects_give_a_command_or_a_command_error(
    op: str, fields: dict[str, object]
) -> None:
    try:
        command = parse_command(json.dumps({"op": op, **fields}).encode())
    except CommandError:
        return
    assert command.op == op
    for value in command.model_dump().values():
        if isinstance(value, float):
            assert value > 0


def test_valid_commands_parse_to_typed_models() -> None:
    assert parse_command(b'{"op": "fluid.irrigate", "flow_ml_min": 1}') == Irrigate(
        op="fluid.irrigate", flow_ml_min=1.0
    )
    assert isinstance(
        parse_command(b'{"op":"fluid.bolus","volume_ml":0.5,"rate_ml_min":0.2}'), Bolus
    )


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b'{"op": "fluid.irrigate", "flow_ml_min": 1, "extra": 1}', "extra"),
        (b'{"op": "fluid.irrigate", "flow_ml_min": true}', "flow_ml_min"),
        (b'{"op": "fluid.bolus", "volume_ml": 0.5}', "rate_ml_min"),
        (b'{"op": "nope"}', "fluid.irrigate"),
    ],
)
def test_errors_name_the_field_or_the_known_ops(payload: bytes, fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment.replace(".", r"\.")):
        parse_command(payload)


def test_an_error_never_echoes_a_large_input_whole() -> None:
    """A 3.2 MB value once came back as a 12.8 MB error reply: quotes are cut short."""
    huge = "x" * 3_200_000
    many = {"op": "fluid.irrigate", "flow_ml_min": huge, **{f"extra{i}": huge for i in range(50)}}
    with pytest.raises(CommandError) as caught:
        parse_command(json.dumps(many).encode())
    message = str(caught.value)
    assert len(message) < 2000
    assert "flow_ml_min" in message and "more characters" in message and "more problems" in message


def test_every_op_is_defined_once_with_its_roles_and_control() -> None:
    """The op table: the wire names, who may ask, and which ops the station in control alone
    may run. Stops never need control (refusing a stop is never the safe side), an observer
    only reads, and what moves fluid or resets a fault needs control."""
    assert set(OPS) == {
        "fluid.irrigate",
        "fluid.hold_pressure",
        "fluid.bolus",
        "fluid.prime",
        "fluid.stop",
        "estop",
        "fault.reset",
        "selftest.run",
        "debug.hang",
        "status",
        "control.take",
        "control.release",
        "pedal.report",
        "procedure.start",
        "procedure.stop",
        "alarm.ack",
        "basket.open",
        "basket.close",
        "basket.retract",
        "basket.home",
        "basket.halt",
        "camera.snapshot",
        "camera.record",
    }
    assert ROLE_OPS[Role.OBSERVER] == {"status"}
    assert ROLE_OPS[Role.SURGEON] == set(OPS) - {"selftest.run", "debug.hang"}
    assert ROLE_OPS[Role.ENGINEER] == set(OPS)
    needs_control = {op for op, model in OPS.items() if model.needs_control}
    assert needs_control == {
        "fluid.irrigate",
        "fluid.hold_pressure",
        "fluid.bolus",
        "fluid.prime",
        "fault.reset",
        "selftest.run",
        "procedure.start",
        "procedure.stop",
        "basket.open",
        "basket.close",
        "basket.retract",
        "basket.home",
    }
    assert not role_may(Role.SURGEON, "no.such.op")


def test_each_motion_op_names_the_interlock_rule_it_runs_under() -> None:
    assert {op: model.action for op, model in OPS.items() if model.action is not None} == {
        "fluid.irrigate": Action.IRRIGATE,
        "fluid.hold_pressure": Action.HOLD_PRESSURE,
        "fluid.bolus": Action.BOLUS,
        "fluid.prime": Action.PRIME,
        "selftest.run": Action.SELF_TEST,
        "basket.open": Action.BASKET_OPEN,
        "basket.close": Action.BASKET_CLOSE,
        "basket.retract": Action.BASKET_RETRACT,
        "basket.home": Action.BASKET_HOME,
    }
