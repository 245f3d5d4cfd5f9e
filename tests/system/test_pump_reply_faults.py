"""A damaged reply to any command the pump driver sends: the daemon survives and reports it.

Every command the daemon sends the pump, each answered once with a corrupt reply (bad CRC), a
garbled one (line noise, no frame), an error (``?NA``) or an alarm (a stall, ``A?S``). Where
fluid moved, it stops and the fault is reported; nothing ends the daemon.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.sim.ne1000_device import ReplyFault
from rig.fluid.events import StopCause
from tests.system.inprocess import InProcessRig, inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]

PUMP_FAULT_CAUSES = {StopCause.PUMP_ALARM, StopCause.PUMP_LINK_LOST}
"""A refusal, an alarm or a corrupt reply is the pump's fault; no reply at all, its link's."""


async def expect_pump_fault(rig: InProcessRig, what: str) -> None:
    """Fluid stopped, a pump fault latched and reported, the daemon up; then reset."""
    await rig.wait_for(lambda: rig.daemon.interlock.latched is not None, 5.0, f"fault on {what}")
    latched = rig.daemon.interlock.latched
    assert latched is not None
    assert latched.cause in PUMP_FAULT_CAUSES | {StopCause.PUMP_DID_NOT_STOP}, (what, latched)
    await rig.wait_for(lambda: not rig.sim.pump.running, 2.0, f"fluid stopped after {what}")
    assert any(stop.cause is latched.cause for stop in rig.stops), what
    rig.assert_alive()
    await rig.reset_and_wait_ready()
    assert not rig.sim.pump.running


@pytest.mark.parametrize("kind", list(ReplyFault))
async def test_a_damaged_reply_to_any_pump_command_is_a_reported_fault(
    tmp_path: Path, kind: ReplyFault
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await rig.wait_ready()
        await rig.prime()
        refused = kind in (ReplyFault.ERROR, ReplyFault.ALARM)

        # Starting: every command of the start sequence.
        for command in ("DIR", "RAT", "VOLUNITS", "VOL", "CLD", "RUN"):
            await rig.arm_reply_fault(command, kind)
            await rig.ok({"op": "fluid.irrigate", "flow_ml_min": 1.0})
            await expect_pump_fault(rig, f"{command} at start")

        # A rate change while running.
        await rig.irrigating(1.0)
        await rig.arm_reply_fault("RAT", kind)
        await rig.ok({"op": "fluid.irrigate", "flow_ml_min": 2.0})
        await expect_pump_fault(rig, "RAT while running")

        # The dispensed-volume poll: a read is retried once, so a single damaged reply is
        # absorbed and counted; a refusal or an alarm is a fault.
        await rig.irrigating(1.0)
        await rig.arm_reply_fault("DIS", kind)
        await rig.wait_for(lambda: "DIS" not in rig.sim.pump.reply_faults, 2.0, "DIS sent")
        if refused:
            await expect_pump_fault(rig, "DIS")
        else:
            await rig.wait_for(
                lambda: rig.daemon.devices["pump"].link.stats.retries > 0, 2.0, "DIS retried"
            )
            # Past the retry's resynchronisation: a stop written during it may have its reply
            # taken for the retry's (untagged replies; drivers/ne1000/driver.py).
            await asyncio.sleep(0.5)
            assert rig.daemon.interlock.latched is None and rig.sim.pump.running
            await rig.ok({"op": "fluid.stop"})
            await rig.wait_for(lambda: not rig.sim.pump.running, 2.0, "stopped")

        # The operator's stop: a pump that did not act on it has its power cut.
        await rig.irrigating(1.0)
        await rig.arm_reply_fault("STP", kind)
        await rig.ok({"op": "fluid.stop"})
        if refused:
            await expect_pump_fault(rig, "STP")
        else:
            await rig.wait_for(lambda: not rig.sim.pump.running, 2.0, "stopped")
            assert rig.daemon.interlock.latched is None

        # Connecting: the probe, safe mode and the diameter, on a reconnect while idle.
        for command in ("QUERY", "SAF", "DIA"):
            connections = rig.daemon.devices["pump"].connections
            await rig.arm_reply_fault(command, kind)
            await rig.on_sim(rig.sim.pump_port.unplug)
            await rig.wait_for(lambda: not rig.daemon.interlock.pump_link_up, 3.0, "pump lost")
            await rig.on_sim(rig.sim.pump_port.plug)
            await rig.wait_for(
                lambda before=connections: rig.daemon.devices["pump"].connections > before,  # type: ignore[misc]
                10.0,
                f"reconnected ({command})",
            )
            assert command not in rig.sim.pump.reply_faults, f"{command} was not sent"
            rig.assert_alive()
            if rig.daemon.interlock.latched is not None:
                # Only a pump that answers its probe with an alarm has one to report.
                assert (command, kind) == ("QUERY", ReplyFault.ALARM), rig.daemon.interlock.latched
                assert rig.daemon.interlock.latched.cause is StopCause.PUMP_ALARM
                await rig.reset_and_wait_ready()
            await rig.wait_ready()
        rig.assert_alive()
