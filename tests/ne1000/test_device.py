"""The NE-1000 device model: what the emulator's pump does with commands, time and pressure."""

from __future__ import annotations

import pytest

from drivers.ne1000.codec import (
    AlarmKind,
    AlarmReply,
    ClearDispensed,
    Command,
    Direction,
    DispensedReply,
    ErrorReply,
    GetDispensed,
    GetVersion,
    Ne1000Codec,
    Prompt,
    PumpStatus,
    Query,
    Reply,
    Run,
    SetDiameter,
    SetDirection,
    SetRate,
    SetSafeMode,
    SetVolume,
    Stop,
    VersionReply,
)
from drivers.sim.ne1000_device import Ne1000Device


class Host:
    """A host codec talking to a device model directly, no I/O."""

    def __init__(self, device: Ne1000Device) -> None:
        self.device = device
        self.codec = Ne1000Codec(address=0)

    def send(self, command: Command, now_s: float = 0.0) -> list[Reply]:
        self.codec.feed(self.device.receive(self.codec.encode(command), now_s))
        return list(self.codec.replies())

    def send_raw(self, data: bytes, now_s: float = 0.0) -> bytes:
        return self.device.receive(data, now_s)

    def enter_safe_mode(self, timeout_s: int, now_s: float) -> None:
        (reply,) = self.send(SetSafeMode(timeout_s), now_s)
        assert isinstance(reply, Prompt)
        self.codec.safe_mode = True


def prompt(status: PumpStatus) -> list[Reply]:
    return [Prompt(0, status)]


@pytest.fixture
def host() -> Host:
    return Host(Ne1000Device())


def start_infusing(host: Host, ml_min: float = 6.0, now_s: float = 0.0) -> None:
    assert host.send(SetRate(ml_min), now_s) == prompt(PumpStatus.STOPPED)
    assert host.send(Run(), now_s) == prompt(PumpStatus.INFUSING)


def test_query_answers_with_the_prompt(host: Host) -> None:
    assert host.send(Query()) == prompt(PumpStatus.STOPPED)
    assert host.send(GetVersion()) == [VersionReply(0, PumpStatus.STOPPED, "NE1000V3.928")]


def test_settings_are_applied(host: Host) -> None:
    for command in (SetDiameter(26.59), SetRate(2.5), SetDirection(Direction.WITHDRAW)):
        assert host.send(command) == prompt(PumpStatus.STOPPED)
    assert host.send(SetVolume(1500.0)) == prompt(PumpStatus.STOPPED) * 2
    device = host.device
    assert (device.diameter_mm, device.rate_ml_min, device.direction) == (
        26.59,
        2.5,
        Direction.WITHDRAW,
    )
    assert device.target_volume_ml == pytest.approx(1.5)


def test_errors_like_a_pump(host: Host) -> None:
    assert host.send_raw(b"0XYZ\r") == b"\x0200S?\x03"
    assert host.send_raw(b"0DIA1.2.3\r") == b"\x0200S?\x03"
    assert host.send(SetDiameter(60.0)) == [ErrorReply(0, PumpStatus.STOPPED, "OOR")]
    assert host.send(SetRate(500.0)) == [ErrorReply(0, PumpStatus.STOPPED, "OOR")]
    start_infusing(host)
    assert host.send(SetDiameter(10.0)) == [ErrorReply(0, PumpStatus.INFUSING, "NA")]


def test_other_addresses_are_ignored(host: Host) -> None:
    assert host.send_raw(b"5RUN\r") == b""
    assert not host.device.running


def test_run_moves_volume_and_flow_follows_the_rate(host: Host) -> None:
    start_infusing(host, ml_min=6.0)
    assert host.device.flow_ml_min == 6.0
    host.device.advance(10.0, line_pressure_mmhg=20.0)
    assert host.device.infused_ml == pytest.approx(1.0)
    (reply,) = host.send(GetDispensed())
    assert isinstance(reply, DispensedReply)
    assert reply.infused_ml == pytest.approx(1.0)
    assert host.send(SetDirection(Direction.REVERSE)) == prompt(PumpStatus.WITHDRAWING)
    assert host.device.flow_ml_min == -6.0
    host.device.advance(5.0, line_pressure_mmhg=0.0)
    assert host.device.withdrawn_ml == pytest.approx(0.5)
    assert host.send(Stop()) == prompt(PumpStatus.STOPPED)
    assert host.device.flow_ml_min == 0.0
    assert host.device.last_stop_reason == "command"
    assert host.send(ClearDispensed(Direction.INFUSE)) == prompt(PumpStatus.STOPPED)
    assert host.device.infused_ml == 0.0
    assert host.device.withdrawn_ml == pytest.approx(0.5)


def test_run_stops_exactly_at_the_target_volume(host: Host) -> None:
    assert host.send(SetVolume(250.0)) == prompt(PumpStatus.STOPPED) * 2
    start_infusing(host, ml_min=6.0)
    host.device.advance(2.4, 0.0)
    assert host.device.running
    host.device.advance(1.0, 0.0)
    assert not host.device.running
    assert host.device.last_stop_reason == "volume"
    assert host.device.infused_ml == pytest.approx(0.25)
    # The target counts from each RUN.
    assert host.send(Run()) == prompt(PumpStatus.INFUSING)
    host.device.advance(10.0, 0.0)
    assert host.device.infused_ml == pytest.approx(0.5)


def test_infusing_against_high_pressure_stalls_with_alarm_s(host: Host) -> None:
    start_infusing(host)
    host.device.advance(0.1, line_pressure_mmhg=299.0)
    assert host.device.running
    host.device.advance(0.1, line_pressure_mmhg=301.0)
    assert not host.device.running
    assert host.device.last_stop_reason == "stall"
    assert host.device.alarm is AlarmKind.STALLED
    assert host.send(Run()) == [AlarmReply(0, AlarmKind.STALLED)]
    assert not host.device.running, "a command answered with an alarm is not acted on"
    assert host.send(Run()) == prompt(PumpStatus.INFUSING)


def test_withdrawing_is_not_stalled_by_positive_pressure(host: Host) -> None:
    host.send(SetDirection(Direction.WITHDRAW))
    host.send(Run())
    host.device.advance(0.1, line_pressure_mmhg=400.0)
    assert host.device.running
    host.device.advance(0.1, line_pressure_mmhg=-400.0)
    assert host.device.last_stop_reason == "stall"


def test_safe_mode_timeout_stops_after_n_seconds_of_silence_not_before(host: Host) -> None:
    start_infusing(host, ml_min=6.0, now_s=0.0)
    host.enter_safe_mode(2, now_s=0.0)
    host.device.advance(1.0, 0.0)
    assert host.send(Query(), now_s=1.0) == prompt(PumpStatus.INFUSING)
    host.device.advance(1.999, 0.0)
    assert host.device.running
    assert host.device.alarm is None
    host.device.advance(0.002, 0.0)
    assert not host.device.running
    assert host.device.last_stop_reason == "safe_mode_timeout"
    assert host.device.alarm is AlarmKind.SAFE_MODE_TIMEOUT
    # Flow stopped at the timeout instant (t = 3 s), not at the end of the step.
    assert host.device.infused_ml == pytest.approx(6.0 * 3.0 / 60.0)


def test_safe_mode_timeout_alarm_is_reported_until_a_valid_packet_clears_it(host: Host) -> None:
    host.enter_safe_mode(1, now_s=0.0)
    host.device.advance(1.5, 0.0)
    assert host.device.alarm is AlarmKind.SAFE_MODE_TIMEOUT
    assert host.device.safe_mode, "the pump stays in safe mode after the timeout"
    assert host.send_raw(b"0RUN\r", now_s=1.6) == b"", "basic-mode bytes are ignored"
    bad = bytearray(host.codec.encode(Run()))
    bad[-2] ^= 0xFF
    host.codec.feed(host.send_raw(bytes(bad), now_s=1.7))
    assert list(host.codec.replies()) == [AlarmReply(0, AlarmKind.SAFE_MODE_TIMEOUT)]
    assert host.send(Run(), now_s=1.8) == [AlarmReply(0, AlarmKind.SAFE_MODE_TIMEOUT)]
    assert not host.device.running
    assert host.send(Query(), now_s=1.9) == prompt(PumpStatus.STOPPED)
    assert host.device.alarm is None


def test_safe_mode_timeout_is_detected_on_receive_too(host: Host) -> None:
    start_infusing(host)
    host.enter_safe_mode(3, now_s=0.0)
    assert host.send(Query(), now_s=3.5) == [AlarmReply(0, AlarmKind.SAFE_MODE_TIMEOUT)]
    assert not host.device.running


def test_valid_packets_keep_safe_mode_alive(host: Host) -> None:
    start_infusing(host)
    host.enter_safe_mode(1, now_s=0.0)
    for step in range(1, 20):
        host.device.advance(0.5, 0.0)
        assert host.send(Query(), now_s=step * 0.5) == prompt(PumpStatus.INFUSING)
    assert host.device.running


def test_bad_crc_is_answered_com_and_does_not_feed_the_watchdog(host: Host) -> None:
    host.enter_safe_mode(1, now_s=0.0)
    bad = bytearray(host.codec.encode(Query()))
    bad[-3] ^= 0x01
    host.codec.feed(host.send_raw(bytes(bad), now_s=0.9))
    assert list(host.codec.replies()) == [ErrorReply(0, PumpStatus.STOPPED, "COM")]
    host.device.advance(0.2, 0.0)
    assert host.device.alarm is AlarmKind.SAFE_MODE_TIMEOUT


def test_saf0_returns_to_basic_mode(host: Host) -> None:
    host.enter_safe_mode(5, now_s=0.0)
    assert host.send(SetSafeMode(0), now_s=1.0) == prompt(PumpStatus.STOPPED)
    host.codec.safe_mode = False
    assert host.device.safe_mode_timeout_s == 0
    host.device.advance(100.0, 0.0)
    assert host.device.alarm is None
    assert host.send(Query(), now_s=101.0) == prompt(PumpStatus.STOPPED)


def test_power_off_stops_and_keeps_settings_but_not_safe_mode(host: Host) -> None:
    host.send(SetDiameter(4.699))
    host.send(SetVolume(100.0))
    start_infusing(host, ml_min=0.05)
    host.enter_safe_mode(2, now_s=0.0)
    host.device.power_off()
    assert not host.device.running
    assert host.device.flow_ml_min == 0.0
    assert host.device.last_stop_reason == "power"
    assert host.send(Query(), now_s=1.0) == []
    host.device.advance(10.0, 0.0)
    assert host.device.alarm is None, "an unpowered pump has no watchdog"
    host.device.power_on(now_s=20.0)
    assert host.device.safe_mode_timeout_s == 0
    assert not host.device.safe_mode
    assert (host.device.diameter_mm, host.device.rate_ml_min) == (4.699, 0.05)
    assert host.device.target_volume_ml == pytest.approx(0.1)


def test_first_command_after_power_up_is_ignored_then_alarm_r(host: Host) -> None:
    host.device.power_off()
    host.device.power_on(now_s=0.0)
    assert host.device.alarm is AlarmKind.RESET
    assert host.send(Run()) == []
    assert not host.device.running, "the swallowed command is not acted on"
    assert host.send(Run()) == [AlarmReply(0, AlarmKind.RESET)]
    assert not host.device.running
    assert host.send(Run()) == prompt(PumpStatus.INFUSING)


def test_commands_split_across_receives_and_several_at_once(host: Host) -> None:
    assert host.send_raw(b"0RA") == b""
    assert host.send_raw(b"T2MM\r0RUN\r0") == b"\x0200S\x03\x0200I\x03"
    assert host.send_raw(b"\r") == b"\x0200I\x03"
    assert host.device.rate_ml_min == 2.0


def test_query_forms_report_settings(host: Host) -> None:
    host.send(SetRate(1.5))
    assert host.send_raw(b"0RAT\r") == b"\x0200S1.5MM\x03"
    assert host.send_raw(b"0DIA\r") == b"\x0200S14.57\x03"
    assert host.send_raw(b"0DIR\r") == b"\x0200SINF\x03"
