"""The I/O board driver over a real pty: scripted byte exchanges, then against the emulated board."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.ioboard.codec import (
    BoardEvent,
    BoardStatus,
    EventKind,
    Heartbeat,
    Nack,
    NackReason,
    PressureSample,
    ResistanceTrip,
    SetFlow,
    SetLight,
    SetPumpRelay,
    Trip,
    build_frame,
)
from drivers.ioboard.driver import BoardCommandRejectedError, BoardTimeoutError, IoBoard
from drivers.sim.ioboard_device import IoBoardDevice
from drivers.sim.pty import PtyPort
from tests.support.scripted_peer import ScriptedPeer


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# The connect exchange, byte for byte: probe, IDENTIFY (seq 0), GET_STATUS (seq 1).
PROBE = h("05 10 f0 cb 7e")
BOARD_EXPECTS_0 = h("05 10 f0 cb 7e")
IDENTIFY_0 = h("06 10 08 fc 47 7e")
IDENT_ACK_1 = h(
    "1a 11 84 01 01 00 00 42 4f 41 52 44 2d 37 00 00 00 00 00 00 00 00 00 81 81 7e"
)  # IDENT: protocol 1, firmware 1.0.0, "BOARD-7"
GET_STATUS_1 = h("06 11 07 3e 99 7e")
STATUS_ACK_2 = h("15 12 82 88 13 00 00 00 00 00 00 00 00 00 30 75 00 00 e7 0d 7e")
CONNECT = [(PROBE, BOARD_EXPECTS_0), (IDENTIFY_0, IDENT_ACK_1), (GET_STATUS_1, STATUS_ACK_2)]

SET_LIGHT_500_2 = h("08 12 04 f4 01 f6 0a 7e")
ACK_3 = build_frame(3, b"")


async def test_connect_identifies_and_reads_status() -> None:
    async with ScriptedPeer(CONNECT) as peer:
        board = IoBoard(peer.path)
        ident = await board.connect()
        assert ident.serial_number == "BOARD-7"
        assert ident.firmware_version == (1, 0, 0)
        assert board.last_status == BoardStatus(5000, False, False, Trip(0), 0, 0, 300.0, 0.0)
        await peer.finished()
        await board.close()


async def test_command_waits_for_its_ack() -> None:
    async with ScriptedPeer([*CONNECT, (SET_LIGHT_500_2, ACK_3)]) as peer:
        board = IoBoard(peer.path)
        await board.connect()
        await board.set_light(500)
        assert board.codec.unacked_count == 0
        assert board.stats.rtt_ms is not None
        await board.close()


async def test_nack_raises_with_the_reason() -> None:
    close_relay = build_frame(2, SetPumpRelay(True).encode())
    nack = build_frame(3, Nack(0x03, NackReason.WATCHDOG_NOT_ARMED).encode())
    async with ScriptedPeer([*CONNECT, (close_relay, nack)]) as peer:
        board = IoBoard(peer.path)
        await board.connect()
        with pytest.raises(BoardCommandRejectedError) as info:
            await board.set_pump_relay(True)
        assert info.value.nack.reason is NackReason.WATCHDOG_NOT_ARMED
        await board.close()


async def test_unacknowledged_frame_is_retransmitted_after_the_adaptive_timeout() -> None:
    # The board never saw the first copy; the second copy is acked.
    script = [*CONNECT, (SET_LIGHT_500_2, b""), (SET_LIGHT_500_2, ACK_3)]
    async with ScriptedPeer(script) as peer:
        board = IoBoard(peer.path)
        await board.connect()
        rto_s = board.codec.rto_s
        assert rto_s == pytest.approx(0.025)  # RTT on a pty is far below the 25 ms floor
        started = time.monotonic()
        await board.set_light(500)
        assert time.monotonic() - started >= rto_s
        assert board.stats.retries == 1
        await board.close()


async def test_heartbeat_is_fire_and_forget() -> None:
    heartbeat_2 = build_frame(2, Heartbeat().encode())
    async with ScriptedPeer([*CONNECT, (heartbeat_2, ACK_3)]) as peer:
        board = IoBoard(peer.path)
        await board.connect()
        done_s = board.heartbeat_nowait()
        assert done_s is not None
        assert board.codec.unacked_count == 1
        await peer.finished()
        assert board.codec.unacked_count == 0
        await board.close()


async def test_samples_reach_the_callback_synchronously_and_gaps_are_counted() -> None:
    got: list[tuple[PressureSample, asyncio.Task[object] | None]] = []

    def on_sample(sample: PressureSample) -> None:
        # Called from the link's data callback, not from a task: nothing awaited on the way.
        got.append((sample, asyncio.current_task()))

    async with ScriptedPeer(CONNECT) as peer:
        board = IoBoard(peer.path, on_sample=on_sample)
        await board.connect()
        frames = [
            build_frame(2, PressureSample(1000 + 2000 * n, n, 10.0 + n).encode())
            for n in (0, 1, 3, 4)  # sample 2 lost on the wire
        ]
        sent_s = time.monotonic()
        peer.send(b"".join(frames))
        await wait_for(lambda: len(got) == 4)
        assert [s.sample_counter for s, _ in got] == [0, 1, 3, 4]
        assert all(task is None for _, task in got)
        assert all(s.rx_time_s >= sent_s for s, _ in got)
        assert board.samples_lost == 1
        assert board.last_sample == got[-1][0]
        await board.close()


# --- against the emulated board -----------------------------------------------------------------


class Bridge:
    """A pty whose far end is IoBoardDevice, ticked every millisecond with the line pressure."""

    def __init__(self, link_dir: Path) -> None:
        self.device = IoBoardDevice(serial_number="SIM-BRIDGE", noise_mmhg=0.0)
        self.port = PtyPort("ioboard", 460800, self._from_host, link_dir=link_dir)
        self.pressure_mmhg = 0.0
        self.drop_next_host_chunk = False
        self.dropped: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    def _from_host(self, data: bytes, arrival_s: float) -> None:
        if self.drop_next_host_chunk:
            self.drop_next_host_chunk = False
            self.dropped.append(data)
            return
        self.port.send(self.device.receive(data, arrival_s))

    async def _tick(self) -> None:
        while True:
            self.port.send(self.device.advance(time.monotonic(), self.pressure_mmhg))
            await asyncio.sleep(0.001)

    async def start(self) -> None:
        await self.port.start()
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.port.stop()


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    b = Bridge(tmp_path)
    await b.start()
    yield b
    await b.stop()


async def wait_for(condition: object, timeout_s: float = 1.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout_s):
        # Polling: the conditions are device-model state that nothing signals.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.002)


async def test_driver_talks_to_the_emulated_board(bridge: Bridge) -> None:
    board = IoBoard(str(bridge.port.path))
    ident = await board.connect()
    assert ident.serial_number == "SIM-BRIDGE"
    await board.configure_watchdog(500)
    await board.set_cutoff(120.0)
    await board.set_light(250)
    status = await board.status()
    assert status.watchdog_timeout_ms == 500
    assert status.cutoff_mmhg == 120.0
    assert status.light_permille == 250
    assert bridge.device.light_permille == 250
    await board.zero_pressure()
    with pytest.raises(BoardCommandRejectedError) as info:
        await board.set_light(1001)
    assert info.value.nack.reason is NackReason.OUT_OF_RANGE
    await board.close()


async def test_dropped_frame_is_retransmitted_and_executed_once(bridge: Bridge) -> None:
    board = IoBoard(str(bridge.port.path))
    await board.connect()
    bridge.drop_next_host_chunk = True
    await board.set_light(300)
    assert bridge.dropped == [build_frame(2, SetLight(300).encode())]
    assert bridge.device.light_permille == 300
    assert board.stats.retries >= 1
    assert board.codec.unacked_count == 0
    await board.close()


async def test_sample_stream_is_complete_and_latency_is_measurable(bridge: Bridge) -> None:
    latencies_s: list[float] = []

    def on_sample(sample: PressureSample) -> None:
        latencies_s.append(sample.rx_time_s - sample.board_time_s)

    board = IoBoard(str(bridge.port.path), on_sample=on_sample)
    await board.connect()
    bridge.pressure_mmhg = 25.0
    n0 = len(latencies_s)
    await asyncio.sleep(0.3)
    assert 120 <= len(latencies_s) - n0 <= 180  # 500 Hz
    assert board.samples_lost == 0
    assert board.last_sample is not None
    assert board.last_sample.pressure_mmhg == 25.0
    # the board clock is CLOCK_MONOTONIC: latency from the sample instant is positive and small
    assert min(latencies_s) > 0
    assert max(latencies_s) < 0.05
    await board.close()


async def test_stop_decided_inside_on_sample_opens_the_relay(bridge: Bridge) -> None:
    stop_times: list[float] = []
    board: IoBoard

    def on_sample(sample: PressureSample) -> None:
        if sample.pressure_mmhg > 40.0 and not stop_times:
            stop_times.append(board.open_pump_relay_nowait())

    board = IoBoard(str(bridge.port.path), on_sample=on_sample)
    await board.connect()
    await board.configure_watchdog(1000)
    await board.set_pump_relay(True)
    assert bridge.device.relay_closed
    bridge.pressure_mmhg = 45.0
    await wait_for(lambda: not bridge.device.relay_closed)
    assert len(stop_times) == 1 and math.isfinite(stop_times[0])
    assert bridge.device.trips == Trip(0)  # opened by the host, not by a board trip
    await board.close()


async def test_missing_heartbeats_trip_the_board_watchdog(bridge: Bridge) -> None:
    events: list[BoardEvent] = []
    board = IoBoard(str(bridge.port.path), on_event=events.append)
    await board.connect()
    await board.configure_watchdog(50)
    await board.set_pump_relay(True)
    for _ in range(10):
        await board.heartbeat()
        await asyncio.sleep(0.02)
    assert events == []
    await wait_for(lambda: bool(events))
    assert events[0].kind is EventKind.WATCHDOG_TRIP
    status = await board.status()
    assert status.trips == Trip.WATCHDOG and not status.relay_closed
    await board.reset_trip()
    assert not (await board.status()).relay_closed
    await board.close()


async def test_the_boards_resistance_stop_is_reported_once_and_rides_with_the_status(
    bridge: Bridge,
) -> None:
    trips: list[ResistanceTrip] = []
    board = IoBoard(str(bridge.port.path), on_resistance_trip=trips.append)
    await board.connect()
    await board.configure_watchdog(2000)
    await board.set_pump_relay(True)
    board.set_flow_nowait(SetFlow(0.5, 60.0, 300, 1059, 2))
    bridge.pressure_mmhg = 20.0  # R = 40 at 0.5 mL/min: under the limit
    await asyncio.sleep(0.1)
    assert bridge.device.board.flow_ul_min == 500 and bridge.device.relay_closed
    bridge.pressure_mmhg = 31.0  # R = 62
    await wait_for(lambda: bool(trips))
    assert not bridge.device.relay_closed and bridge.device.trips == Trip.RESISTANCE
    (trip,) = trips
    assert trip.latency_ms >= 2.0 and trip.resistance_mmhg_min_per_ml == 62.0
    # both board times unwrapped onto the host's clock (the simulator's board clock is it)
    assert trip.trigger_board_time_s <= trip.relay_open_board_time_s <= trip.rx_time_s
    status = await board.status()
    assert status.trips == Trip.RESISTANCE and board.last_resistance_trip == trip
    assert trips == [trip]  # the report with the status is the same trip: not reported again
    await board.close()


async def test_silent_board_times_out_and_is_counted(bridge: Bridge) -> None:
    board = IoBoard(str(bridge.port.path), command_timeout_s=0.2)
    await board.connect()
    bridge.port.faults.silent = True
    with pytest.raises(BoardTimeoutError):
        await board.set_light(10)
    assert board.stats.timeouts == 1
    assert board.stats.retries >= 2
    await board.close()
