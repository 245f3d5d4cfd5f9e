"""The I/O board's own resistance stop on the running rig: the host's supervision blind, the board
alone stops the pump at a wall, and the host latches it and recovers to no flow.

In-process (tests/system/inprocess.py): the fault injected is in the host's code, where only a
test in its process can reach.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from firmware import protocol as p
from rig.fluid.events import StopCause
from rig.fluid.supervision import StopSupervisor
from rig.safety.states import RigState
from tests.hazard_plugin import HazardEvidence
from tests.system.inprocess import inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

FLOW_ML_MIN = 0.3
"""Low enough that a wall reaches the board's resistance limit (60 mmHg·min/mL: 18 mmHg) long
before its 80 mmHg cut-off, and the host's 40 mmHg pressure limit."""


@pytest.mark.hazard("H02")
async def test_with_the_hosts_supervision_blind_the_board_alone_stops_a_wall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hazard_evidence: HazardEvidence
) -> None:
    # The host's whole sample supervision returns nothing (a software fault that blinds it while
    # the rest runs): no resistance, pressure or plausibility stop of the host's can act.
    monkeypatch.setattr(StopSupervisor, "on_sample", lambda *args, **kwargs: None)
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        board = rig.sim.board.board  # the firmware the simulated board runs
        assert board.flow_ul_min == 0  # at rest the board's stop is disarmed
        await rig.prime()
        await rig.irrigating(FLOW_ML_MIN)
        await rig.wait_for(lambda: board.flow_ul_min == 300, 1.0, "the board told the flow")
        await rig.on_sim(functools.partial(rig.sim.start_scenario, "tip_against_wall"))
        await rig.wait_for(lambda: rig.daemon.interlock.latched is not None, 10.0, "a stop")

        stop = rig.daemon.interlock.latched
        assert stop is not None and stop.cause is StopCause.BOARD_RESISTANCE_STOP, stop
        assert board.trips == p.TRIP_RESISTANCE and not rig.sim.board.relay_output
        await rig.wait_for(lambda: not rig.sim.pump.running, 1.0, "the pump unpowered")
        assert rig.daemon.interlock.state is RigState.FAULT
        figures = stop.figures
        board_stop_ms, resistance = figures["board_stop_ms"], figures["resistance_mmhg_min_per_ml"]
        assert isinstance(board_stop_ms, float) and isinstance(resistance, float)
        # the board's own times: the relay opened at the second sample over the limit (plus
        # however late the simulated board got to run it)
        assert board_stop_ms >= 2.0
        assert figures["board_relay_open_t_us"] != figures["board_trigger_t_us"]
        assert resistance >= 60.0
        assert "resistance passed the board's own limit" in stop.cause.in_plain_words
        hazard_evidence.detection_ms(board_stop_ms)

        # Recovery: the wall gone, the fault reset: the relay closes, nothing flows, and the
        # board is told no flow (the old setpoint is not resumed).
        await rig.on_sim(rig.sim.clear)
        await rig.reset_and_wait_ready()
        await rig.wait_for(lambda: rig.sim.board.relay_output, 2.0, "the relay closed")
        assert not board.trips and board.flow_ul_min == 0
        assert not rig.daemon.controller.pump_running and not rig.sim.pump.running
