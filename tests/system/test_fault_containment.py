"""No single fault ends the daemon or switches supervision off (docs/safety/fault-containment.md).

On the simulator over the real wire, in the test's process so that a fault can be injected
inside the daemon's own code.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

import pytest

from drivers.sim.ne1000_device import ReplyFault
from drivers.sim.pty import LinkFaults
from drivers.sim.rig_sim import RigSimulator
from rig.fluid.controller import FluidMode
from rig.fluid.events import StopCause
from tests.system.inprocess import InProcessRig, inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


class InjectedBugError(RuntimeError):
    pass


def _raise(*_args: object, **_kwargs: object) -> None:
    raise InjectedBugError("injected")


async def _expect_internal_fault(rig: InProcessRig, subsystem: str) -> None:
    await rig.wait_for(lambda: rig.daemon.interlock.latched is not None, 3.0, subsystem)
    latched = rig.daemon.interlock.latched
    assert latched is not None and latched.cause is StopCause.INTERNAL_FAULT, latched
    assert "InjectedBugError" in latched.message, latched.message
    await rig.wait_for(lambda: not rig.sim.pump.running, 2.0, "fluid stopped")
    rig.assert_alive()


async def _recover(rig: InProcessRig) -> None:
    """One reset once the bug is gone: the samples the bug kept from being judged arrived, so
    they are not reported as lost on the link (a second fault to reset would be a nuisance)."""
    await rig.reset_and_wait_ready()
    await asyncio.sleep(0.3)
    assert rig.daemon.interlock.latched is None, rig.daemon.interlock.latched


@pytest.mark.hazard("H08")
async def test_an_exception_in_the_estimator_or_any_supervisor_check_stops_the_pump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        await rig.prime()
        controller = rig.daemon.controller
        supervision = controller._supervision
        checks = {
            "estimator": (controller._estimator, "update"),
            "plausibility": (supervision._plausibility, "on_sample"),
            "over_pressure": (supervision._over_pressure, "update"),
            "over_resistance": (supervision._over_resistance, "update"),
            "resistance_rise": (supervision._fast_rise, "update"),
            "leak_reference": (supervision._leak_reference, "update"),
        }
        for name, (target, method) in checks.items():
            await rig.irrigating(1.0)
            await asyncio.sleep(0.6)  # past the leak reference's settling
            with monkeypatch.context() as patch:
                patch.setattr(target, method, _raise)
                await _expect_internal_fault(rig, name)
                # Reset with the bug still there: fluid is refused (a sample that could not be
                # judged is not fresh), or, for a check that runs only while the pump runs, the
                # first sample of the new run stops it again. Supervision never fails open.
                await asyncio.sleep(0.1)
                await rig.ok({"op": "fault.reset"})
                await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
                await _expect_internal_fault(rig, f"{name}, again after a reset")
            await _recover(rig)


@pytest.mark.hazard("H08")
async def test_an_exception_in_a_control_task_latches_a_fault_and_the_task_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        await rig.prime()
        await rig.irrigating(1.0)
        controller = rig.daemon.controller
        with monkeypatch.context() as patch:
            patch.setattr(controller, "actuate_once", _raise)
            await _expect_internal_fault(rig, "fluid actuation")
            assert rig.daemon.interlock.latched is not None
            assert rig.daemon.interlock.latched.figures["subsystem"] == "fluid actuation"
        # The actuation task was restarted: after a reset the rig moves fluid again.
        await rig.reset_and_wait_ready()
        await rig.irrigating(1.0)


async def test_a_command_refused_at_actuation_is_dropped_not_retried(tmp_path: Path) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        await rig.prime()
        # Slow pump replies stretch the start sequence over several exchanges.
        slow = LinkFaults(latency_s=0.03)
        await rig.on_sim(functools.partial(setattr, rig.sim.pump_port, "faults", slow))
        denials_before = len(rig.daemon.interlock.denials)
        await rig.ok({"op": "fluid.irrigate", "flow_ml_min": 1.0})
        await rig.on_sim(rig.sim.board_port.unplug)  # between acceptance and the RUN
        await asyncio.sleep(1.0)
        await rig.on_sim(rig.sim.board_port.plug)
        await rig.wait_for(lambda: rig.daemon.interlock.relay_link_up, 10.0, "board back")
        await asyncio.sleep(1.0)
        # The outage may latch faults of its own (lost samples, the board's watchdog); either
        # way the command is gone, and it was refused once, not at every actuation tick.
        assert not rig.sim.pump.running
        assert rig.daemon.controller.setpoint.mode in (FluidMode.STOPPED, FluidMode.FAULT)
        refusals = [
            d for d in list(rig.daemon.interlock.denials)[denials_before:] if "irrigate" in d.action
        ]
        assert len(refusals) == 1, refusals


def _own_power_supply(sim: RigSimulator) -> None:
    sim.pump.own_power_supply = True


async def test_a_pump_that_keeps_its_power_through_the_self_test_is_not_latched_at_connect(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path, before_daemon=_own_power_supply) as rig:
        await rig.wait_ready()
        report = rig.daemon.self_test.last_report
        assert report is not None and report.passed
        assert rig.daemon.interlock.latched is None
        # And on every later connect.
        connections = rig.daemon.devices["pump"].connections
        await rig.on_sim(rig.sim.pump_port.unplug)
        await rig.wait_for(lambda: not rig.daemon.interlock.pump_link_up, 3.0, "pump lost")
        await rig.on_sim(rig.sim.pump_port.plug)
        await rig.wait_for(
            lambda: rig.daemon.devices["pump"].connections > connections, 10.0, "reconnect"
        )
        await rig.wait_ready()
        assert rig.daemon.interlock.latched is None
        assert not any(stop.cause is StopCause.PUMP_ALARM for stop in rig.stops)


async def test_shutdown_reports_a_stop_the_pump_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rig.daemon")
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        await rig.arm_reply_fault("STP", ReplyFault.ERROR)
    down = [r.getMessage() for r in caplog.records if " down;" in r.getMessage()]
    assert len(down) == 1 and "NOT confirmed" in down[0], down
