"""The rule table's refusal text, which the mutation run (scripts/mutation.sh) found untested.

An operator reads the refusal: it must name the state the rig is in and every state the command
is allowed in, sorted, so two refusals of one command read the same.
"""

from __future__ import annotations

from rig.safety.rules import Action, Facts, refusal
from rig.safety.states import RigState

GOOD = Facts(
    links=frozenset({"pump", "board"}),
    pressure_fresh=True,
    line_primed=True,
    saline_under_cap=True,
    contrast_under_cap=True,
)


def test_a_state_refusal_lists_the_allowed_states_sorted() -> None:
    assert refusal(Action.IRRIGATE, RigState.FAULT, GOOD) == (
        "fluid.irrigate refused: the rig is fault (allowed in: active, ready)"
    )
    assert refusal(Action.PUMP_POWER_ON, RigState.ESTOP, GOOD) == (
        "pump.power_on refused: the rig is estop (allowed in: offline, ready, self_test)"
    )
