"""`rig simctl` words -> the simulator's control requests (the system test drives a real one)."""

from __future__ import annotations

import pytest

from rig.cli.simctl_cmd import SimctlUsageError, build_request


@pytest.mark.parametrize(
    ("op", "words", "request_"),
    [
        ("state", [], {"op": "state"}),
        (
            "scenario",
            ["tip_against_wall", "delay_s=0", "factor=12.5"],
            {
                "op": "scenario",
                "name": "tip_against_wall",
                "params": {"delay_s": 0, "factor": 12.5},
            },
        ),
        ("scenario", ["occlusion"], {"op": "scenario", "name": "occlusion", "params": {}}),
        (
            "link-fault",
            ["pump", "drop_probability=0.05", "silent=true"],
            {"op": "link_fault", "device": "pump", "drop_probability": 0.05, "silent": True},
        ),
        ("unplug", ["board"], {"op": "unplug", "device": "board"}),
        (
            "sensor",
            ["drift_mmhg_per_s=0.1", "stuck=false"],
            {"op": "sensor_fault", "drift_mmhg_per_s": 0.1, "stuck": False},
        ),
        ("pump-fault", ["ignores_stop=true"], {"op": "pump_fault", "ignores_stop": True}),
        ("relay-welded", ["welded=false"], {"op": "relay_welded", "welded": False}),
        ("estop", [], {"op": "estop"}),
        ("basket-obstacle", ["at_usteps=null"], {"op": "basket_obstacle", "at_usteps": None}),
        # Text that is not JSON stays text: the simulator names what it expected.
        ("sensor", ["offset_mmhg=high"], {"op": "sensor_fault", "offset_mmhg": "high"}),
    ],
)
def test_words_become_the_simulators_request(
    op: str, words: list[str], request_: dict[str, object]
) -> None:
    assert build_request(op, words) == request_


@pytest.mark.parametrize(
    ("op", "words", "message"),
    [
        ("scenario", [], "scenario needs its name"),
        ("unplug", [], "unplug needs its device"),
        ("clear", ["now"], "'now': expected KEY=VALUE"),
        ("unplug", ["pump", "board"], "'board': expected KEY=VALUE"),
        ("sensor", ["=1"], "expected KEY=VALUE with a key"),
    ],
)
def test_malformed_words_are_refused_before_anything_is_sent(
    op: str, words: list[str], message: str
) -> None:
    with pytest.raises(SimctlUsageError, match=message):
        build_request(op, words)
