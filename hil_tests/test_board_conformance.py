"""Rig I/O board conformance (docs/protocols/ioboard.md): the same assertions against the
emulated board and a real one.

The relay is closed only with the watchdog armed and is open again when each test ends (the
`board` fixture). Only the cut-off test moves the pump: it infuses into the line until the
board's cut-off opens the relay. On a bench that test is skipped unless the operator sets
RIG_HIL_BENCH_PRESSURE=1 (with the line dead-ended into the transducer); elsewhere the pump may
be powered while the relay is closed, and stays stopped.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time

import pytest

from drivers.ioboard.codec import (
    BoardEvent,
    ConfigWatchdog,
    EventKind,
    MsgId,
    NackReason,
    PressureSample,
    ResistanceTrip,
    SetFlow,
    Trip,
)
from drivers.ioboard.driver import BoardCommandRejectedError, IoBoard
from drivers.ne1000.codec import Direction
from drivers.ne1000.driver import Ne1000Pump
from drivers.sim.ioboard_device import FIRMWARE_VERSION
from hil_tests.conftest import Heartbeats, Target
from rig.devices.board import board_resistance_stop
from rig.safety.interlock import BoardResistanceStop
from tests.hazard_plugin import HazardEvidence

SAMPLE_RATE_HZ = 500
SAMPLE_PERIOD_US = 2000
CUTOFF_CEILING_MMHG = 300.0
"""The board's absolute cut-off ceiling, a firmware build constant (ioboard.md 5.4)."""
TRIP_MARGIN_S = 0.050
BENCH_PRESSURE_ENV = "RIG_HIL_BENCH_PRESSURE"
"""Set to 1 to let the cut-off test pressurise the line of a real bench (it is skipped there
otherwise: the line must be dead-ended into the transducer, not open to air, and connected to
nothing that can be harmed)."""
CUTOFF_TEST_MMHG = 5.0
CUTOFF_TEST_RATE_ML_MIN = 0.5
CUTOFF_TEST_BACKSTOP_UL = 50.0
"""The pump's target volume: it stops by itself after 6 s even if nothing else stops it."""
CUTOFF_TRIP_SAMPLES = 3
"""The relay must open within this many sample periods of the first sample over the cut-off
(the firmware checks every sample instant: in fact at that very sample)."""


def heartbeat_period_s(target: Target) -> float:
    return target.profile.devices.board.heartbeat_period_ms / 1000.0


def watchdog_timeout_ms(target: Target) -> int:
    return target.profile.devices.board.watchdog_timeout_ms


async def collect_samples(board: IoBoard, seconds: float) -> list[PressureSample]:
    samples: list[PressureSample] = []
    board.on_sample = samples.append
    try:
        await asyncio.sleep(seconds)
    finally:
        board.on_sample = None
    return samples


async def arm_watchdog(board: IoBoard, target: Target) -> None:
    await board.configure_watchdog(watchdog_timeout_ms(target))
    if (await board.status()).trips:
        await board.reset_trip()


async def test_identify_returns_serial_number_and_firmware_version(
    target: Target, board: IoBoard
) -> None:
    ident = await board.identify()
    assert ident.protocol_version == 1
    assert ident.serial_number
    assert ident.serial_number.isprintable()
    assert len(ident.firmware_version) == 3
    assert all(0 <= part <= 255 for part in ident.firmware_version)
    assert board.ident == ident
    if target.simulated:
        assert ident.serial_number == target.sim.board.serial_number
        assert ident.firmware_version == FIRMWARE_VERSION


async def test_status_is_readable_and_current(target: Target, board: IoBoard) -> None:
    first = await board.status()
    await asyncio.sleep(0.05)
    second = await board.status()
    assert board.last_status == second
    # t_us is the board's microsecond clock when the status was taken
    assert 0.04 <= second.board_time_s - first.board_time_s <= 1.0
    assert 0 <= second.light_permille <= 1000
    assert 0.0 < second.cutoff_mmhg <= CUTOFF_CEILING_MMHG
    assert second.watchdog_timeout_ms == 0 or 20 <= second.watchdog_timeout_ms <= 2000
    assert not second.estop_pressed, "release the e-stop button before running the hil tests"
    if target.simulated:
        model = target.sim.board
        assert (second.relay_closed, second.trips, second.light_permille, second.cutoff_mmhg) == (
            model.relay_closed,
            model.trips,
            model.light_permille,
            model.cutoff_mmhg,
        )


async def test_samples_stream_at_500_hz_without_gaps(board: IoBoard) -> None:
    await collect_samples(board, 0.1)  # the stream is flowing
    lost_before = board.samples_lost
    start_s = time.monotonic()
    samples = await collect_samples(board, 1.2)
    in_window = [s for s in samples if start_s + 0.1 <= s.rx_time_s < start_s + 1.1]
    assert SAMPLE_RATE_HZ * 0.98 <= len(in_window) <= SAMPLE_RATE_HZ * 1.02
    steps_us = {(b.t_us - a.t_us) & 0xFFFFFFFF for a, b in itertools.pairwise(samples)}
    assert steps_us == {SAMPLE_PERIOD_US}
    counter_steps = {
        (b.sample_counter - a.sample_counter) & 0xFFFF for a, b in itertools.pairwise(samples)
    }
    assert counter_steps == {1}
    assert all(b.board_time_s > a.board_time_s for a, b in itertools.pairwise(samples))
    assert board.samples_lost == lost_before == 0


async def test_pressure_at_rest_reads_zero(board: IoBoard) -> None:
    samples = await collect_samples(board, 0.5)
    assert len(samples) > 200
    readings = [s.pressure_mmhg for s in samples]
    assert not any(s.at_rail for s in samples)
    assert abs(statistics.fmean(readings)) <= 5.0
    assert max(abs(r) for r in readings) <= 5.0


@pytest.mark.emulator_only(reason="only the emulated board's clock is this machine's monotonic")
async def test_emulated_board_clock_is_the_host_monotonic_clock(board: IoBoard) -> None:
    samples = await collect_samples(board, 0.2)
    latencies_s = [s.rx_time_s - s.board_time_s for s in samples]
    assert min(latencies_s) > 0.0
    assert statistics.median(latencies_s) < 0.01


async def test_heartbeats_keep_the_relay_closed(target: Target, board: IoBoard) -> None:
    await arm_watchdog(board, target)
    async with Heartbeats(board, heartbeat_period_s(target)):
        await board.set_pump_relay(True)
        deadline_s = time.monotonic() + 1.0
        polls = 0
        while time.monotonic() < deadline_s:
            status = await board.status()
            assert status.relay_closed and status.trips == Trip(0), status
            polls += 1
            await asyncio.sleep(0.1)
        assert polls >= 5
        if target.simulated:
            assert target.sim.board.relay_closed


@pytest.mark.hazard("H08")
async def test_watchdog_opens_the_relay_and_latches_until_reset(
    target: Target, board: IoBoard, hazard_evidence: HazardEvidence
) -> None:
    timeout_s = watchdog_timeout_ms(target) / 1000.0
    events: list[BoardEvent] = []
    board.on_event = events.append
    await arm_watchdog(board, target)
    async with Heartbeats(board, heartbeat_period_s(target)) as beats:
        await board.set_pump_relay(True)
        await asyncio.sleep(0.2)
        assert (await board.status()).relay_closed
        assert not events
    last_heartbeat_s = beats.last_tx_s
    assert last_heartbeat_s is not None

    async with asyncio.timeout(timeout_s + 1.0):
        # Polling: the event arrives through a callback that nothing awaits.
        while not events:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    (event,) = events
    assert event.kind is EventKind.WATCHDOG_TRIP
    # The instant the relay opened: the board's own time on the emulator (it is this machine's
    # clock there); the host's receive time on a real board (later than the instant: stricter).
    opened_s = event.board_time_s if target.board_clock_is_host_clock else event.rx_time_s
    sample_period_s = SAMPLE_PERIOD_US / 1e6
    hazard_evidence.detection_ms((opened_s - last_heartbeat_s) * 1000)
    assert opened_s - last_heartbeat_s >= timeout_s - 0.001
    assert opened_s - last_heartbeat_s <= timeout_s + sample_period_s + TRIP_MARGIN_S

    tripped = await board.status()
    assert not tripped.relay_closed
    assert tripped.trips == Trip.WATCHDOG
    # latched: heartbeats and time do not clear it, and the relay refuses to close
    async with Heartbeats(board, heartbeat_period_s(target)):
        await asyncio.sleep(0.3)
        with pytest.raises(BoardCommandRejectedError) as refused:
            await board.set_pump_relay(True)
        assert refused.value.nack.reason is NackReason.TRIP_LATCHED
        still = await board.status()
        assert still.trips == Trip.WATCHDOG and not still.relay_closed
        # reset_trip clears the latch and does not close the relay
        await board.reset_trip()
        after_reset = await board.status()
        assert after_reset.trips == Trip(0)
        assert not after_reset.relay_closed
        if target.simulated:
            assert not target.sim.board.relay_closed
        # the relay can close again now, by command only
        await board.set_pump_relay(True)
        assert (await board.status()).relay_closed
    assert len(events) == 1


@pytest.mark.hazard("H01")
# A string condition: pytest evaluates it with `os` and `config` at hand, before any fixture
# powers anything on a bench.
@pytest.mark.skipif(
    f"config.getoption('--bench-profile') is not None and os.environ.get({BENCH_PRESSURE_ENV!r}) != '1'",
    reason=f"pressurises the bench's line: set {BENCH_PRESSURE_ENV}=1 with the line dead-ended "
    "into the transducer and connected to nothing that can be harmed",
)
async def test_cutoff_opens_the_relay_when_the_pump_drives_pressure_over_it(
    target: Target,
    board: IoBoard,
    pump_power: Heartbeats,
    pump: Ne1000Pump,
    hazard_evidence: HazardEvidence,
) -> None:
    """The pump, powered through the relay with heartbeats running, infuses into the line until
    the pressure passes a low cut-off: the board opens the relay by itself and latches CUTOFF."""
    samples: list[PressureSample] = []
    events: list[BoardEvent] = []
    board.on_sample = samples.append
    board.on_event = events.append
    sample_period_s = SAMPLE_PERIOD_US / 1e6
    try:
        await board.set_cutoff(CUTOFF_TEST_MMHG)
        before = await board.status()
        assert before.cutoff_mmhg == CUTOFF_TEST_MMHG
        assert before.relay_closed and before.trips == Trip(0), before
        assert pump_power.sent > 0 and before.watchdog_timeout_ms == watchdog_timeout_ms(target)
        lost_before = board.samples_lost
        await pump.set_diameter(target.profile.syringe.inner_diameter_mm)
        await pump.set_rate(CUTOFF_TEST_RATE_ML_MIN)
        await pump.set_direction(Direction.INFUSE)
        await pump.set_volume_ul(CUTOFF_TEST_BACKSTOP_UL)
        await pump.run()
        try:
            async with asyncio.timeout(2.0):
                # Polling: the event arrives through a callback that nothing awaits.
                while not events:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        except TimeoutError:
            highest = max((s.pressure_mmhg for s in samples), default=None)
            pytest.fail(
                f"no board event within 2 s of the pump starting (highest reading {highest} "
                f"mmHg, cut-off {CUTOFF_TEST_MMHG} mmHg)"
            )
        await asyncio.sleep(0.02)  # the samples sent with and after the trip
    finally:
        board.on_sample = None
        board.on_event = None
    assert board.samples_lost == lost_before, "a lost sample could be the first over the cut-off"
    assert [e.kind for e in events] == [EventKind.CUTOFF_TRIP], "one event, sent once"
    event = events[0]
    assert event.pressure_mmhg >= CUTOFF_TEST_MMHG
    first_over = next(s for s in samples if s.pressure_mmhg >= CUTOFF_TEST_MMHG)
    # On the board's own clock: the trip is taken at a sample instant, no sooner than the first
    # reading over the cut-off and within a few sample periods of it.
    trip_after_us = (event.t_us - first_over.t_us) & 0xFFFFFFFF
    assert trip_after_us <= CUTOFF_TRIP_SAMPLES * SAMPLE_PERIOD_US, trip_after_us
    # The instant the relay opened: on the emulator, the edge the simulator saw (the pump model
    # lost its power then), against the sample's board time (this machine's clock); on a real
    # board, the EVENT's receive time against the sample's (later than the instant: stricter).
    if target.simulated:
        opened_at_s = target.sim.relay_opened_at_s
        assert opened_at_s is not None
        opened_after_s = opened_at_s - first_over.board_time_s
    else:
        opened_after_s = event.rx_time_s - first_over.rx_time_s
    hazard_evidence.detection_ms(opened_after_s * 1000)
    assert 0.0 <= opened_after_s <= CUTOFF_TRIP_SAMPLES * sample_period_s + TRIP_MARGIN_S

    tripped = await board.status()
    assert not tripped.relay_closed
    assert tripped.trips == Trip.CUTOFF
    # Latched: heartbeats keep running, and the relay refuses to close.
    with pytest.raises(BoardCommandRejectedError) as refused:
        await board.set_pump_relay(True)
    assert refused.value.nack.reason is NackReason.TRIP_LATCHED
    assert (await board.status()).trips == Trip.CUTOFF
    if target.simulated:
        assert not target.sim.board.relay_closed
        assert not target.sim.pump.powered and target.sim.pump.last_stop_reason == "power"
    # Put the board back as the profile has it: the cut-off first, then the trip cleared.
    await board.set_cutoff(target.profile.limits.board_cutoff_mmhg)
    await board.reset_trip()


async def test_set_cutoff_is_reported_by_status(target: Target, board: IoBoard) -> None:
    await board.set_cutoff(120.0)
    assert (await board.status()).cutoff_mmhg == 120.0
    await board.set_cutoff(target.profile.limits.board_cutoff_mmhg)
    assert (await board.status()).cutoff_mmhg == target.profile.limits.board_cutoff_mmhg


async def test_cutoff_above_the_ceiling_is_clamped(target: Target, board: IoBoard) -> None:
    await board.set_cutoff(400.0)
    assert (await board.status()).cutoff_mmhg == CUTOFF_CEILING_MMHG
    await board.set_cutoff(target.profile.limits.board_cutoff_mmhg)


@pytest.mark.hazard("H10")
async def test_open_pump_relay_nowait_opens_the_relay(target: Target, board: IoBoard) -> None:
    await arm_watchdog(board, target)
    async with Heartbeats(board, heartbeat_period_s(target)):
        await board.set_pump_relay(True)
        assert (await board.status()).relay_closed
        called_s = time.monotonic()
        tx_done_s = board.open_pump_relay_nowait()
        assert math.isfinite(tx_done_s) and called_s < tx_done_s < called_s + 0.1
        status = await board.status()  # sent after the open: its reply reflects it
        assert not status.relay_closed
        assert status.trips == Trip(0)  # opened by the host, not by a trip
        if target.simulated:
            assert not target.sim.board.relay_closed


async def test_set_light_round_trips_through_status(target: Target, board: IoBoard) -> None:
    await board.set_light(250)
    assert (await board.status()).light_permille == 250
    if target.simulated:
        assert target.sim.board.light_permille == 250
    await board.set_light(0)
    assert (await board.status()).light_permille == 0


async def test_out_of_range_watchdog_is_nacked_by_the_board(board: IoBoard) -> None:
    before = await board.status()
    # The codec encodes any u16 (ConfigWatchdog(5) is valid bytes): the board must refuse it.
    assert ConfigWatchdog(5).encode() == bytes((MsgId.CONFIG_WATCHDOG, 5, 0))
    with pytest.raises(BoardCommandRejectedError) as refused:
        await board.configure_watchdog(5)
    assert refused.value.nack.msg_id == MsgId.CONFIG_WATCHDOG
    assert refused.value.nack.reason is NackReason.OUT_OF_RANGE
    after = await board.status()
    assert after.watchdog_timeout_ms == before.watchdog_timeout_ms
    assert board.codec.unacked_count == 0  # the NACKed frame was acknowledged, not retried


async def test_link_is_clean_without_retransmissions(target: Target, board: IoBoard) -> None:
    await board.identify()
    for level in (100, 200, 0):
        await board.set_light(level)
        await board.status()
    await board.set_cutoff(target.profile.limits.board_cutoff_mmhg)
    await collect_samples(board, 0.2)
    stats = board.stats
    assert stats.retries == 0
    assert stats.timeouts == 0
    assert stats.crc_errors == 0
    assert stats.invalid_bytes == 0
    assert board.malformed_frames == 0
    assert board.samples_lost == 0
    assert stats.frames_rx > 100
    assert stats.rtt_ms is not None


# --- SET_FLOW and the board's resistance stop (protocol 5.9) ---------------------------------


def resistance_stop(target: Target) -> BoardResistanceStop:
    """The limits the daemon tells the board, from the profile under test."""
    return board_resistance_stop(target.profile.devices.board, target.profile.fluid)


async def test_set_flow_out_of_range_is_nacked_by_the_board(target: Target, board: IoBoard) -> None:
    stop = resistance_stop(target)
    await board.set_flow(stop.message(0.0))  # in range: acknowledged
    bad = [
        SetFlow(10.001, stop.limit_mmhg_min_per_ml, 300, 1000, 2),  # flow over 10 mL/min
        SetFlow(1.0, 0.99, 300, 1000, 2),  # limit under 1 mmHg·min/mL
        SetFlow(1.0, 60.0, 1000, 300, 2),  # short lag longer than the long one
        SetFlow(1.0, 60.0, 40, 1000, 2),  # lag under 50 ms
        SetFlow(1.0, 60.0, 300, 1000, 0),  # no persistence
    ]
    for message in bad:
        with pytest.raises(BoardCommandRejectedError) as refused:
            await board.set_flow(message)
        assert refused.value.nack.msg_id == MsgId.SET_FLOW, message
        assert refused.value.nack.reason is NackReason.OUT_OF_RANGE, message
    assert (await board.status()).trips == Trip(0)


async def test_set_flow_with_the_line_at_rest_does_not_trip(target: Target, board: IoBoard) -> None:
    """Told the lowest flow of the envelope with the line at rest (0 mmHg and the transducer's
    noise), the board's resistance stop stays quiet and the relay closed."""
    await arm_watchdog(board, target)
    trips: list[ResistanceTrip] = []
    board.on_resistance_trip = trips.append
    try:
        async with Heartbeats(board, heartbeat_period_s(target)):
            await board.zero_pressure()
            await board.set_pump_relay(True)
            await board.set_flow(resistance_stop(target).message(0.1))
            await asyncio.sleep(0.5)
            status = await board.status()
            await board.set_flow(resistance_stop(target).message(0.0))
    finally:
        board.on_resistance_trip = None
    assert trips == []
    assert status.relay_closed and status.trips == Trip(0), status


@pytest.mark.emulator_only(
    reason="needs pressure in the line with the pump stopped: the emulator's transducer "
    "offset stands for it (a bench would pressurise the line, as the cut-off test does)"
)
async def test_resistance_stop_opens_the_relay_and_reports_resistance_trip(
    target: Target, board: IoBoard
) -> None:
    """10 mmHg in the line: told no flow, the board does nothing (no flow, no stop); told
    0.1 mL/min (100 mmHg·min/mL, over the limit), it opens the relay within its persistence,
    reports RESISTANCE_TRIP with both board times (once, through STATUS answers too), and
    latches until RESET_TRIP."""
    stop = resistance_stop(target)
    pressure_mmhg, flow_ml_min = 10.0, 0.1
    assert pressure_mmhg / flow_ml_min > stop.limit_mmhg_min_per_ml
    await arm_watchdog(board, target)
    trips: list[ResistanceTrip] = []
    board.on_resistance_trip = trips.append
    device = target.sim.board
    try:
        async with Heartbeats(board, heartbeat_period_s(target)):
            await board.set_pump_relay(True)
            device.sensor_offset_mmhg = pressure_mmhg
            await board.set_flow(stop.message(0.0))
            await asyncio.sleep(0.2)
            assert trips == [] and (await board.status()).relay_closed, "no flow, no stop"

            await board.set_flow(stop.message(flow_ml_min))
            async with asyncio.timeout(1.0):
                # Polling: the report arrives through a callback that nothing awaits.
                while not trips:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            tripped = await board.status()
            with pytest.raises(BoardCommandRejectedError) as refused:
                await board.set_pump_relay(True)
            assert refused.value.nack.reason is NackReason.TRIP_LATCHED
            assert board.last_resistance_trip == trips[0]
    finally:
        board.on_resistance_trip = None
        device.sensor_offset_mmhg = 0.0
    assert len(trips) == 1
    trip = trips[0]
    assert trip.flow_ml_min == pytest.approx(flow_ml_min)
    assert trip.pressure_mmhg == pytest.approx(pressure_mmhg, abs=1.0)
    assert trip.resistance_mmhg_min_per_ml >= stop.limit_mmhg_min_per_ml
    # On the board's clock: the relay opens at the sample that completes the persistence, in the
    # same pass (the emulator's pass comes at its physics step: later, within the margin).
    persistence_ms = (stop.persistence_samples - 1) * SAMPLE_PERIOD_US / 1000
    assert persistence_ms <= trip.latency_ms <= persistence_ms + TRIP_MARGIN_S * 1000
    assert not tripped.relay_closed and tripped.trips == Trip.RESISTANCE
    assert not device.relay_closed
    await board.set_flow(stop.message(0.0))
    await board.reset_trip()
    assert (await board.status()).trips == Trip(0)
