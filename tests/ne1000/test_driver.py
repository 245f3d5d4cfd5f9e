"""The NE-1000 driver against scripted byte exchanges over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import binascii

import pytest

from drivers.ne1000.codec import AlarmKind, Direction, Prompt, PumpStatus
from drivers.ne1000.driver import (
    Dispensed,
    Ne1000Pump,
    PumpAlarmError,
    PumpCommandError,
    PumpProtocolError,
    PumpTimeoutError,
)
from tests.support.scripted_peer import ScriptedPeer

STX, ETX = b"\x02", b"\x03"


def safe(body: bytes) -> bytes:
    crc = binascii.crc_hqx(body, 0)
    return STX + bytes([len(body) + 4]) + body + crc.to_bytes(2, "big") + ETX


def basic(body: bytes) -> bytes:
    return STX + body + ETX


def bad_crc(frame: bytes) -> bytes:
    return frame[:-3] + bytes([frame[-3] ^ 0x5A]) + frame[-2:]


CONNECT_BASIC = [(b"0\r", basic(b"00S"))]
CONNECT_SAFE = [(b"0\r", basic(b"00S")), (b"0SAF5\r", basic(b"00S"))]


async def connected(peer: ScriptedPeer, **kwargs: float) -> Ne1000Pump:
    pump = Ne1000Pump(peer.path, **kwargs)  # type: ignore[arg-type]
    await pump.connect()
    return pump


async def test_connect_tolerates_the_power_up_quirk_and_enters_safe_mode() -> None:
    script = [
        (b"0\r", b""),  # swallowed: the first command after power-up
        (b"0\r", basic(b"00A?R")),
        (b"0\r", basic(b"00S")),
        (b"0SAF5\r", basic(b"00S")),
        (safe(b"0"), safe(b"00S")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        assert pump.is_connected
        assert pump.safe_mode
        assert pump.last_alarm is AlarmKind.RESET
        assert pump.stats.timeouts == 1
        assert await pump.query() is PumpStatus.STOPPED
        await pump.close()
        assert not pump.is_connected


async def test_connect_in_basic_mode_sends_no_saf() -> None:
    async with ScriptedPeer([*CONNECT_BASIC, (b"0VER\r", basic(b"00SNE1000V3.928"))]) as peer:
        pump = await connected(peer)
        assert not pump.safe_mode
        assert await pump.version() == "NE1000V3.928"
        await pump.close()
        async with asyncio.timeout(1.0):
            await pump.wait_closed()


async def test_an_alarm_reported_before_a_reconnect_is_not_taken_for_one_at_connect() -> None:
    """A pump that keeps its power (no alarm R) must not bring back the T the host saw before."""
    script = [
        *CONNECT_BASIC,
        (b"0\r", basic(b"00A?T")),
        (b"0\r", basic(b"00S")),
        *CONNECT_BASIC,
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer)
        with pytest.raises(PumpAlarmError):
            await pump.query()
        assert pump.last_alarm is AlarmKind.SAFE_MODE_TIMEOUT
        await pump.query()
        await pump.close()
        await pump.connect()
        assert pump.last_alarm is None
        await pump.close()


async def test_connect_finds_a_pump_left_in_safe_mode_and_returns_it_to_basic() -> None:
    script = [
        (b"0\r", b""),
        (b"0\r", b""),
        (b"0\r", b""),
        (safe(b"0"), safe(b"00I")),
        (safe(b"0SAF0"), safe(b"00I")),
        (b"0\r", basic(b"00I")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, reply_timeout_s=0.1)
        assert not pump.safe_mode
        assert await pump.query() is PumpStatus.INFUSING
        await pump.close()


async def test_set_rate_run_stop_in_safe_mode_byte_for_byte() -> None:
    script = [
        *CONNECT_SAFE,
        (bytes.fromhex("02 0b 30 52 41 54 31 4d 4d b6 c6 03"), safe(b"00S")),  # 0RAT1MM
        (bytes.fromhex("02 08 30 52 55 4e 44 07 03"), safe(b"00I")),  # 0RUN
        (bytes.fromhex("02 08 30 53 54 50 b3 f9 03"), safe(b"00S")),  # 0STP
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        await pump.set_rate(1.0)
        await pump.run()
        status_after_run = pump.last_status
        await pump.stop()
        assert (status_after_run, pump.last_status) == (PumpStatus.INFUSING, PumpStatus.STOPPED)
        assert pump.stats.frames_tx == pump.stats.frames_rx == 5
        assert pump.stats.rtt_ms is not None
        await pump.close()


async def test_every_setting_in_basic_mode() -> None:
    script = [
        *CONNECT_BASIC,
        (b"0DIA14.57\r", basic(b"00S")),
        (b"0DIRWDR\r", basic(b"00S")),
        (b"0VOLUL\r", basic(b"00S")),
        (b"0VOL250\r", basic(b"00S")),
        (b"0CLDINF\r", basic(b"00S")),
        (b"0DIS\r", basic(b"00SI0.25W1.5ML")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer)
        await pump.set_diameter(14.57)
        await pump.set_direction(Direction.WITHDRAW)
        await pump.set_volume_ul(250.0)
        await pump.clear_dispensed(Direction.INFUSE)
        assert await pump.dispensed() == Dispensed(0.25, 1.5, PumpStatus.STOPPED)
        await pump.close()


async def test_volume_units_reply_is_awaited_before_the_volume_is_sent() -> None:
    """The manual: wait for the response to each command before sending the next one."""
    script = [
        *CONNECT_SAFE,
        (safe(b"0VOLUL"), safe(b"00S")),
        (safe(b"0VOL250"), safe(b"00S")),
    ]
    async with ScriptedPeer(script, turn_taking=True) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        await pump.set_volume_ul(250.0)
        await pump.close()


async def test_a_refused_volume_unit_stops_the_volume_from_going_out() -> None:
    script = [*CONNECT_SAFE, (safe(b"0VOLUL"), safe(b"00S?NA"))]
    async with ScriptedPeer(script, turn_taking=True) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        with pytest.raises(PumpCommandError):
            await pump.set_volume_ul(250.0)
        await pump.close()


async def test_bad_crc_on_a_query_reply_is_counted_and_retried() -> None:
    bad = bad_crc(safe(b"00SI1W0ML"))
    script = [
        *CONNECT_SAFE,
        (safe(b"0DIS"), bad),
        (safe(b"0DIS"), safe(b"00SI1W0ML")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        assert await pump.dispensed() == Dispensed(1.0, 0.0, PumpStatus.STOPPED)
        assert pump.stats.crc_errors == 1
        assert pump.stats.retries == 1
        assert pump.stats.invalid_bytes == len(bad)
        assert pump.stats.timeouts == 0
        await pump.close()


async def test_bad_crc_on_a_command_reply_is_not_retried() -> None:
    script = [*CONNECT_SAFE, (safe(b"0RUN"), bad_crc(safe(b"00I")))]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5)
        with pytest.raises(PumpProtocolError):
            await pump.run()
        assert pump.stats.retries == 0
        await pump.close()


async def test_timeout_raises_and_a_late_reply_is_not_taken_for_the_next() -> None:
    script = [*CONNECT_BASIC, (b"0RUN\r", b""), (b"0\r", basic(b"00S"))]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, reply_timeout_s=0.1)
        with pytest.raises(PumpTimeoutError):
            await pump.run()
        assert pump.stats.timeouts == 1
        assert pump.stats.retries == 0, "a command that moves the pump is never resent"
        peer.send(basic(b"00I"))  # the RUN reply, too late
        assert await pump.query() is PumpStatus.STOPPED
        await pump.close()


async def test_query_is_retried_once_after_a_timeout() -> None:
    script = [*CONNECT_BASIC, (b"0\r", b""), (b"0\r", b"")]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, reply_timeout_s=0.1)
        with pytest.raises(PumpTimeoutError):
            await pump.query()
        assert (pump.stats.timeouts, pump.stats.retries) == (2, 1)
        await pump.close()


async def test_error_and_alarm_replies_raise() -> None:
    script = [
        *CONNECT_BASIC,
        (b"0RAT1MM\r", basic(b"00S?OOR")),
        (b"0RUN\r", basic(b"00A?S")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer)
        with pytest.raises(PumpCommandError) as refused:
            await pump.set_rate(1.0)
        assert refused.value.code == "OOR"
        with pytest.raises(PumpAlarmError) as alarm:
            await pump.run()
        assert alarm.value.alarm is AlarmKind.STALLED
        assert pump.last_alarm is AlarmKind.STALLED
        await pump.close()


async def test_stop_nowait_overtakes_lock_waiters_and_both_replies_are_consumed() -> None:
    script = [
        *CONNECT_SAFE,
        (safe(b"0DIS"), b""),  # the pump is slow to answer DIS
        (safe(b"0STP"), safe(b"00II1.5W0ML") + safe(b"00S")),
        (safe(b"0RAT2MM"), safe(b"00S")),
    ]
    async with ScriptedPeer(script) as peer:
        pump = await connected(peer, safe_mode_timeout_s=5, reply_timeout_s=0.5)
        async with asyncio.TaskGroup() as tg:
            dispensed = tg.create_task(pump.dispensed())
            set_rate = tg.create_task(pump.set_rate(2.0))
            await asyncio.sleep(0.05)
            assert not dispensed.done()
            bytes_before = pump.link.stats.bytes_tx
            done_s = pump.stop_nowait()
            assert pump.link.stats.bytes_tx == bytes_before + len(safe(b"0STP")), "written now"
        assert done_s == pump.last_stop_tx_done_s
        assert dispensed.result() == Dispensed(1.5, 0.0, PumpStatus.INFUSING)
        assert set_rate.done()
        assert pump.last_stop_reply == Prompt(0, PumpStatus.STOPPED)
        assert pump.unsolicited_replies == 0
        await pump.close()


async def test_stop_nowait_is_synchronous_and_reports_the_wire_time() -> None:
    async with ScriptedPeer([*CONNECT_BASIC, (b"0STP\r", basic(b"00A?T"))]) as peer:
        pump = await connected(peer)
        now_s = asyncio.get_running_loop().time()
        done_s = pump.stop_nowait()
        # 5 bytes at 19200 baud 8N1 is 2.6 ms.
        assert 0.0026 - 1e-6 <= done_s - now_s < 0.05
        await asyncio.sleep(0.1)
        assert pump.last_alarm is AlarmKind.SAFE_MODE_TIMEOUT
        await pump.close()


async def test_connect_gives_up_when_nothing_answers() -> None:
    script = [(b"0\r", b"")] * 3 + [(safe(b"0"), b"")] * 3
    async with ScriptedPeer(script) as peer:
        pump = Ne1000Pump(peer.path, reply_timeout_s=0.05)
        with pytest.raises(PumpTimeoutError):
            await pump.connect()
        assert not pump.is_connected
        await pump.close()
