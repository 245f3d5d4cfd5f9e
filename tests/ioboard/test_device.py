"""The emulated board's firmware rules: watchdog, cut-off, latched trips, e-stop, sample stream."""

from __future__ import annotations

import pytest

from drivers.ioboard.codec import (
    BoardEvent,
    BoardHostCodec,
    BoardIdent,
    BoardMessage,
    BoardStatus,
    ConfigWatchdog,
    EventKind,
    GetStatus,
    Heartbeat,
    HostMessage,
    Identify,
    Nack,
    NackReason,
    PressureSample,
    ResetTrip,
    SetCutoff,
    SetLight,
    SetPumpRelay,
    Trip,
    ZeroPressure,
)
from drivers.sim.ioboard_device import FIRMWARE_VERSION, IoBoardDevice
from firmware.board import ESTOP_RELEASE_DEBOUNCE_US

PERIOD_S = 0.002
T0 = 1000.0  # an arbitrary CLOCK_MONOTONIC reading, on a sample instant


class Bench:
    """A host codec wired straight to the device, with time stepped by hand."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("noise_mmhg", 0.0)
        self.device = IoBoardDevice(**kwargs)  # type: ignore[arg-type]
        self.host = BoardHostCodec()
        self.now_s = T0
        self.pressure_mmhg = 0.0
        self.messages: list[BoardMessage] = []
        self._receive(self.device.receive(self.host.probe(), self.now_s))
        assert self.host.synced

    def _receive(self, data: bytes) -> list[BoardMessage]:
        self.host.feed(data, self.now_s)
        got = [m for frame in self.host.events() for m in frame.messages]
        self.messages += got
        return got

    def send(self, *messages: HostMessage) -> list[BoardMessage]:
        data = self.host.encode(*messages, now_s=self.now_s)
        return self._receive(self.device.receive(data, self.now_s))

    def run(self, seconds: float, heartbeat_every_s: float | None = None) -> list[BoardMessage]:
        """Advance in 1 ms steps (twice the sample rate), heartbeating as asked."""
        got: list[BoardMessage] = []
        next_hb = self.now_s
        end = self.now_s + seconds
        while self.now_s < end - 1e-9:
            self.now_s = round(self.now_s + 0.001, 6)
            if heartbeat_every_s is not None and self.now_s >= next_hb:
                got += self.send(Heartbeat())
                next_hb += heartbeat_every_s
            got += self._receive(self.device.advance(self.now_s, self.pressure_mmhg))
        return got

    def arm_and_close(self, watchdog_ms: int = 100) -> None:
        assert self.send(ConfigWatchdog(watchdog_ms)) == []
        assert self.send(SetPumpRelay(True)) == []
        assert self.device.relay_closed


def events(messages: list[BoardMessage]) -> list[BoardEvent]:
    return [m for m in messages if isinstance(m, BoardEvent)]


def samples(messages: list[BoardMessage]) -> list[PressureSample]:
    return [m for m in messages if isinstance(m, PressureSample)]


def test_power_up_state_is_safe() -> None:
    bench = Bench()
    (status,) = bench.send(GetStatus())
    assert isinstance(status, BoardStatus)
    assert not status.relay_closed
    assert status.trips == Trip(0)
    assert status.watchdog_timeout_ms == 0
    assert status.light_permille == 0
    assert status.cutoff_mmhg == 300.0


def test_identify_reports_serial_and_versions() -> None:
    bench = Bench(serial_number="SIM-0042")
    assert bench.send(Identify()) == [BoardIdent(1, FIRMWARE_VERSION, "SIM-0042")]


def test_relay_cannot_close_before_the_watchdog_is_armed() -> None:
    bench = Bench()
    assert bench.send(SetPumpRelay(True)) == [Nack(0x03, NackReason.WATCHDOG_NOT_ARMED)]
    assert not bench.device.relay_closed


def test_watchdog_trips_after_the_timeout_and_not_before() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=100)
    armed_at = bench.now_s
    assert events(bench.run(0.100)) == []
    assert bench.device.relay_closed
    (trip,) = events(bench.run(0.010))
    assert trip.kind is EventKind.WATCHDOG_TRIP
    trip_s = trip.t_us / 1e6
    assert 0.100 < trip_s - armed_at <= 0.100 + PERIOD_S
    assert not bench.device.relay_closed
    assert bench.device.trips == Trip.WATCHDOG
    assert events(bench.run(0.5)) == []  # latched: one event, not one per sample


def test_heartbeats_keep_the_watchdog_from_tripping() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=50)
    assert events(bench.run(2.0, heartbeat_every_s=0.040)) == []
    assert bench.device.relay_closed


def test_other_commands_do_not_feed_the_watchdog() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=50)
    for _ in range(10):
        bench.send(GetStatus())
        bench.send(SetLight(100))
        bench.run(0.010)
    assert bench.device.trips == Trip.WATCHDOG


def test_watchdog_cannot_be_disarmed() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=100)
    assert bench.send(ConfigWatchdog(0)) == [Nack(0x02, NackReason.OUT_OF_RANGE)]
    assert bench.send(ConfigWatchdog(2001)) == [Nack(0x02, NackReason.OUT_OF_RANGE)]
    assert bench.device.watchdog_timeout_ms == 100


def test_cutoff_trips_latches_and_reports_the_pressure() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=2000)
    bench.send(SetCutoff(80.0))
    bench.pressure_mmhg = 79.0
    assert events(bench.run(0.02, heartbeat_every_s=0.1)) == []
    bench.pressure_mmhg = 81.0
    (trip,) = events(bench.run(0.01, heartbeat_every_s=0.1))
    assert trip.kind is EventKind.CUTOFF_TRIP
    assert trip.pressure_mmhg == pytest.approx(81.0, abs=0.01)
    assert not bench.device.relay_closed
    bench.pressure_mmhg = 10.0
    bench.run(0.05, heartbeat_every_s=0.1)
    assert bench.device.trips == Trip.CUTOFF  # latched after the pressure fell
    assert bench.send(SetPumpRelay(True)) == [Nack(0x03, NackReason.TRIP_LATCHED)]


def test_cutoff_is_clamped_to_the_board_ceiling() -> None:
    bench = Bench(cutoff_ceiling_mmhg=300.0)
    bench.send(SetCutoff(500.0))
    (status,) = bench.send(GetStatus())
    assert isinstance(status, BoardStatus)
    assert status.cutoff_mmhg == 300.0
    bench.pressure_mmhg = 301.0
    assert [e.kind for e in events(bench.run(0.004))] == [EventKind.CUTOFF_TRIP]


def test_reset_trip_clears_the_latch_but_never_closes_the_relay() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=20)
    bench.run(0.05)
    assert bench.device.trips == Trip.WATCHDOG
    assert bench.send(ResetTrip()) == []
    assert bench.device.trips == Trip(0)
    assert not bench.device.relay_closed
    assert bench.send(SetPumpRelay(True)) == []
    assert bench.device.relay_closed


def test_estop_opens_the_relay_and_stays_latched_after_release() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=2000)
    bench.device.press_estop()
    got = bench.run(0.004)
    assert [e.kind for e in events(got)] == [EventKind.ESTOP_PRESSED]
    assert not bench.device.relay_closed
    assert bench.send(ResetTrip()) == [Nack(0x06, NackReason.ESTOP_PRESSED)]
    assert bench.send(SetPumpRelay(True)) == [Nack(0x03, NackReason.ESTOP_PRESSED)]
    bench.device.release_estop()
    # the release counts once the input has read released for the debounce time
    assert events(bench.run(ESTOP_RELEASE_DEBOUNCE_US / 1e6 - 0.002)) == []
    assert [e.kind for e in events(bench.run(0.004))] == [EventKind.ESTOP_RELEASED]
    assert bench.device.trips == Trip.ESTOP
    assert not bench.device.relay_closed
    assert bench.send(ResetTrip()) == []
    assert not bench.device.relay_closed


def test_samples_are_on_exact_instants_with_a_counting_counter() -> None:
    bench = Bench()
    bench.pressure_mmhg = 12.34
    got = samples(bench.run(0.1))
    # the first call reports the instant just passed (T0), then every instant up to T0 + 0.1 s
    assert len(got) == 51
    assert [s.t_us for s in got] == [(int(T0 * 1e6) + 2000 * i) % 2**30 for i in range(51)]
    assert [s.sample_counter for s in got] == list(range(51))
    assert all(s.pressure_mmhg == 12.34 for s in got)


def test_one_sample_per_frame_of_fourteen_bytes() -> None:
    device = IoBoardDevice()
    device.advance(1.0, 0.0)
    data = device.advance(1.0 + 10 * PERIOD_S, 0.0)
    assert len(data) == 10 * 14


def test_coarse_steps_interpolate_pressure_between_calls() -> None:
    device = IoBoardDevice(noise_mmhg=0.0)
    host = BoardHostCodec()
    host.feed(device.advance(1.0, 0.0))
    host.feed(device.advance(1.010, 50.0))
    pressures = [m.pressure_mmhg for f in host.events() for m in f.messages]  # type: ignore[union-attr]
    assert pressures == pytest.approx([0.0, 10.0, 20.0, 30.0, 40.0, 50.0])


def test_noise_is_gaussian_and_seeded() -> None:
    a = IoBoardDevice(noise_mmhg=0.5, seed=3)
    b = IoBoardDevice(noise_mmhg=0.5, seed=3)
    assert a.advance(1.0, 20.0) == b.advance(1.0, 20.0)
    host = BoardHostCodec()
    a.advance(2.0, 20.0)
    host.feed(a.advance(4.0, 20.0))
    values = [m.pressure_mmhg for f in host.events() for m in f.messages]  # type: ignore[union-attr]
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    assert mean == pytest.approx(20.0, abs=0.1)
    assert sd == pytest.approx(0.5, rel=0.15)


def test_zero_pressure_removes_the_transducer_offset() -> None:
    bench = Bench()
    bench.device.sensor_offset_mmhg = 4.0
    bench.run(0.05)
    assert bench.send(ZeroPressure()) == []
    assert bench.device.zero_offset_mmhg == pytest.approx(4.0)
    bench.pressure_mmhg = 20.0
    assert samples(bench.run(0.01))[-1].pressure_mmhg == pytest.approx(20.0)
    (status,) = bench.send(GetStatus())
    assert isinstance(status, BoardStatus)
    assert status.zero_offset_mmhg == pytest.approx(4.0)


def test_zero_pressure_refuses_a_pressurised_line_and_a_closed_relay() -> None:
    bench = Bench()
    bench.pressure_mmhg = 40.0
    bench.run(0.05)
    assert bench.send(ZeroPressure()) == [Nack(0x09, NackReason.OUT_OF_RANGE)]
    bench.pressure_mmhg = 0.0
    bench.run(0.05)
    bench.arm_and_close(watchdog_ms=2000)
    assert bench.send(ZeroPressure()) == [Nack(0x09, NackReason.RELAY_CLOSED)]


def test_disconnected_transducer_reads_the_rail_and_trips_the_cutoff() -> None:
    bench = Bench()
    bench.arm_and_close(watchdog_ms=2000)
    bench.device.sensor_disconnected = True
    got = bench.run(0.004)
    assert samples(got)[-1].at_rail
    assert [e.kind for e in events(got)] == [EventKind.CUTOFF_TRIP]
    assert not bench.device.relay_closed


def test_stuck_transducer_repeats_its_last_value() -> None:
    bench = Bench(noise_mmhg=0.0)
    bench.device.noise_mmhg = 0.3
    bench.pressure_mmhg = 15.0
    last = samples(bench.run(0.01))[-1].pressure_mmhg
    bench.device.sensor_stuck = True
    bench.pressure_mmhg = 60.0
    assert {s.pressure_mmhg for s in samples(bench.run(0.05))} == {last}


def test_offset_drift_accumulates() -> None:
    bench = Bench()
    bench.device.pressure_offset_drift_mmhg_per_s = 2.0
    bench.run(1.0)
    assert samples(bench.messages)[-1].pressure_mmhg == pytest.approx(2.0, abs=0.01)


def test_a_long_stall_loses_samples_but_keeps_counting() -> None:
    device = IoBoardDevice()
    host = BoardHostCodec()
    host.feed(device.advance(1.0, 0.0))
    host.feed(device.advance(3.0, 0.0))
    got = [m for f in host.events() for m in f.messages if isinstance(m, PressureSample)]
    assert len(got) == 101
    assert got[-1].sample_counter == 1000
    assert device.samples_dropped == 900


def test_every_accepted_frame_is_answered_at_once() -> None:
    device = IoBoardDevice()
    host = BoardHostCodec()
    host.feed(device.receive(host.probe(), 1.0))
    list(host.events())
    host.feed(device.receive(host.encode(SetLight(10)), 1.0))
    (frame,) = host.events()
    assert frame.acked_seqs == (0,)
    assert frame.messages == ()
