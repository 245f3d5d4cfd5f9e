"""The API's command parser: every payload is either a typed command or a CommandError."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.api.commands import Bolus, CommandError, Irrigate, parse_command

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
OPS = st.sampled_from(
    [
        "fluid.irrigate",
        "fluid.pressure",
        "fluid.bolus",
        "fluid.prime",
        "fluid.stop",
        "fault.reset",
        "status",
        "fluid.flood",
        "",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_command_or_a_command_error(payload: bytes) -> None:
    try:
        parse_command(payload)
    except CommandError as exc:
        assert exc.code == "invalid" and str(exc)


@settings(max_examples=400, deadline=None)
@given(
    OPS,
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
