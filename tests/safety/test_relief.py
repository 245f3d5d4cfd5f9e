"""A stop cancels the relief withdraw at any step: the real pump driver against the emulated pump
over a pseudo-terminal; the relay is a stand-in (the relief never touches it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.ioboard import SetFlow
from drivers.ne1000 import Ne1000Pump
from drivers.sim.rig_sim import RigSimulator, SimSettings
from rig.fluid.events import StopCause
from rig.safety.interlock import Interlock, InterlockDeniedError

RELIEF_COMMANDS = ("DIR", "RAT", "VOLUNITS", "VOL", "RUN")


class _Relay:
    def open_pump_relay_nowait(self) -> float:
        return 0.0

    async def set_pump_relay(self, closed: bool) -> None:
        pass

    async def reset_trip(self) -> None:
        pass

    async def configure_watchdog(self, timeout_ms: int) -> None:
        pass

    async def set_cutoff(self, mmhg: float) -> None:
        pass

    async def zero_pressure(self) -> None:
        pass

    async def set_light(self, permille: int) -> None:
        pass

    def set_flow_nowait(self, message: SetFlow) -> float | None:
        return None


@pytest.mark.parametrize("stop_after", RELIEF_COMMANDS)
async def test_a_stop_at_any_step_of_the_relief_withdraw_cancels_the_rest(
    tmp_path: Path, stop_after: str
) -> None:
    async with RigSimulator(SimSettings(link_dir=tmp_path / "dev")) as sim:
        sim.pump.own_power_supply = True
        physics = asyncio.create_task(sim.run())
        pump = Ne1000Pump(str(sim.pump_port.path), safe_mode_timeout_s=2)
        await pump.connect()
        interlock = Interlock(pump, _Relay())
        interlock.set_links(pump=True, board=True)
        interlock.trip(StopCause.PRESSURE_LIMIT, "over pressure", mode="irrigating")
        interlock.arm_relief()
        await asyncio.sleep(0.1)  # that stop's bytes are through before the watching starts
        seen: list[str] = []
        stopped: list[bool] = []
        receive = sim.pump.receive

        def receive_and_stop(data: bytes, now_s: float) -> bytes:
            reply = receive(data, now_s)
            text = data.decode("latin-1")
            for key in RELIEF_COMMANDS:
                if (key == "VOLUNITS" and "VOLUL" in text) or (key != "VOLUNITS" and key in text):
                    seen.append(key)
                    break
            if "STP" in text:
                seen.append("STP")
            if seen and seen[-1] == stop_after and not stopped:
                stopped.append(True)
                interlock.estop("test")  # a later stop while that step is on the wire
            return reply

        sim.pump.receive = receive_and_stop  # type: ignore[method-assign]
        try:
            await interlock.relief_withdraw(20.0, 1.0)
            cancelled = False
        except InterlockDeniedError:
            cancelled = True
        await asyncio.sleep(0.2)
        after_stop = seen[seen.index("STP") + 1 :]
        assert "RUN" not in after_stop, f"on the wire: {seen}"
        assert not sim.pump.running, seen
        assert cancelled is (stop_after != "RUN"), "only a motion fully sent is not cancelled"
        physics.cancel()
        await pump.close()
