"""Byte-level tests of the I/O board codec: these bytes are the contract with the firmware."""

from __future__ import annotations

import pytest

from drivers.ioboard.codec import (
    MAX_UNACKED_FRAMES,
    RTO_INITIAL_S,
    RTO_MAX_S,
    RTO_MIN_S,
    BoardEvent,
    BoardFrame,
    BoardHostCodec,
    BoardIdent,
    BoardMessage,
    BoardProtocolError,
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
    ResistanceTrip,
    SetCutoff,
    SetFlow,
    SetLight,
    SetPumpRelay,
    Trip,
    ZeroPressure,
    build_frame,
    crc16,
    decode_board_payload,
    encode_payload,
)
from drivers.ioboard.device_codec import BoardDeviceCodec, HostFrame, decode_host_payload


def reference_crc16(data: bytes) -> int:
    """Bit-by-bit CRC-16/CCITT-FALSE, written from the parameters alone (poly 0x1021, init
    0xFFFF, MSB first, no xorout): an independent check on the table-driven crc_hqx."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (seq, message, frame): golden frames, as in docs/protocols/ioboard.md
GOLDEN: list[tuple[int, HostMessage | BoardMessage, bytes]] = [
    (0, Heartbeat(), h("06 10 01 6d 6e 7e")),
    (1, ConfigWatchdog(200), h("08 11 02 c8 00 8f af 7e")),
    (2, SetPumpRelay(True), h("07 12 03 01 bd 9c 7e")),
    (3, SetPumpRelay(False), h("07 13 03 00 9a 8d 7e")),
    (4, SetLight(750), h("08 14 04 ee 02 0d 48 7e")),
    (5, SetCutoff(150.0), h("08 15 05 98 3a 59 68 7e")),
    (6, ResetTrip(), h("06 16 06 b7 2f 7e")),
    (7, GetStatus(), h("06 17 07 94 3f 7e")),
    (8, Identify(), h("06 18 08 75 ee 7e")),
    (9, ZeroPressure(), h("06 19 09 56 fe 7e")),
    (
        10,
        PressureSample(0x12345678, 0xBEEF, -12.5),
        h("0e 1a 81 78 56 34 12 ef be 1e fb 94 d1 7e"),
    ),
    (
        11,
        BoardStatus(1_000_000, True, False, Trip.WATCHDOG | Trip.ESTOP, 200, 500, 150.0, -1.25),
        h("15 1b 82 40 42 0f 00 01 00 05 c8 00 f4 01 98 3a 83 ff f7 8a 7e"),
    ),
    (
        12,
        BoardEvent(4_000_000, EventKind.CUTOFF_TRIP, 151.23),
        h("0d 1c 83 00 09 3d 00 04 13 3b d2 b6 7e"),
    ),
    (
        13,
        BoardIdent(1, (1, 2, 3), "SIM-0001"),
        h("1a 1d 84 01 01 02 03 53 49 4d 2d 30 30 30 31 00 00 00 00 00 00 00 00 a6 d1 7e"),
    ),
    (14, Nack(0x03, NackReason.TRIP_LATCHED), h("08 1e 85 03 04 6f a1 7e")),
    (
        15,
        SetFlow(1.0, 60.0, 300, 1059, 2),
        h("0f 1f 0a e8 03 70 17 2c 01 23 04 02 eb 57 7e"),
    ),
    (
        0,
        ResistanceTrip(4_000_000, 4_002_000, 61.23, 1.0, 61.23),
        h("14 10 86 00 09 3d 00 d0 10 3d 00 eb 17 e8 03 eb 17 a5 db 7e"),
    ),
]

HOST_GOLDEN = [g for g in GOLDEN if not isinstance(g[1], BoardMessage)]
BOARD_GOLDEN = [g for g in GOLDEN if isinstance(g[1], BoardMessage)]


def test_crc_is_ccitt_false_with_the_standard_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert reference_crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


@pytest.mark.parametrize(("seq", "message", "frame"), GOLDEN, ids=lambda v: repr(v)[:30])
def test_golden_frame_bytes(seq: int, message: HostMessage | BoardMessage, frame: bytes) -> None:
    assert build_frame(seq, encode_payload((message,))) == frame
    assert frame[0] == len(frame)
    assert frame[1] == 0x10 | seq
    assert (frame[-3] << 8 | frame[-2]) == reference_crc16(frame[:-3])
    assert frame[-1] == 0x7E


def test_sample_frame_is_fourteen_bytes() -> None:
    assert len(build_frame(0, PressureSample(0, 0, 0.0).encode())) == 14


@pytest.mark.parametrize(("seq", "message", "frame"), BOARD_GOLDEN, ids=lambda v: repr(v)[:30])
def test_board_golden_frames_decode_on_the_host(
    seq: int, message: BoardMessage, frame: bytes
) -> None:
    codec = synced_host()
    codec.feed(frame)
    (event,) = codec.events()
    assert event.messages == (message,)


@pytest.mark.parametrize(("seq", "message", "frame"), HOST_GOLDEN, ids=lambda v: repr(v)[:30])
def test_host_golden_frames_decode_on_the_board(
    seq: int, message: HostMessage, frame: bytes
) -> None:
    device = BoardDeviceCodec()
    device.expected_seq = seq
    device.feed(frame)
    (event,) = device.events()
    assert event == HostFrame(seq, (message,), None)
    assert device.expected_seq == (seq + 1) % 16


def synced_host(board_expects: int = 0) -> BoardHostCodec:
    codec = BoardHostCodec()
    codec.feed(build_frame(board_expects, b""))
    assert list(codec.events()) == [BoardFrame(board_expects, (), None, (), 0.0)]
    assert codec.synced
    return codec


def test_host_learns_the_boards_expected_seq_from_its_first_frame() -> None:
    codec = BoardHostCodec()
    assert codec.probe() == h("05 10 f0 cb 7e")
    with pytest.raises(RuntimeError):
        codec.encode(Heartbeat())
    codec.feed(build_frame(9, b""))
    list(codec.events())
    assert codec.encode(Heartbeat()) == build_frame(9, Heartbeat().encode())


def test_several_messages_share_one_frame() -> None:
    codec = synced_host()
    frame = codec.encode(SetLight(100), Heartbeat())
    assert frame == build_frame(0, h("04 64 00 01"))
    device = BoardDeviceCodec()
    device.feed(frame)
    assert list(device.events()) == [HostFrame(0, (SetLight(100), Heartbeat()), None)]


def test_payload_larger_than_a_frame_is_refused() -> None:
    codec = synced_host()
    with pytest.raises(ValueError, match="frame holds 59"):
        codec.encode(*([SetLight(1)] * 20))


def test_out_of_type_values_are_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="timeout_ms = 70000"):
        ConfigWatchdog(70000).encode()
    with pytest.raises(ValueError, match="pressure_mmhg"):
        PressureSample(0, 0, 400.0).encode()
    with pytest.raises(ValueError, match="serial_number"):
        BoardIdent(1, (1, 0, 0), "X" * 17).encode()


def test_sequence_numbers_wrap_at_sixteen_and_acks_follow() -> None:
    host = synced_host()
    device = BoardDeviceCodec()
    for i in range(40):
        frame = host.encode(Heartbeat(), now_s=float(i))
        assert frame[1] == 0x10 | (i % 16)
        device.feed(frame)
        (accepted,) = device.events()
        assert isinstance(accepted, HostFrame)
        assert accepted.seq == i % 16
        host.feed(device.encode(), rx_time_s=i + 0.001)
        (ack,) = host.events()
        assert ack.ack_seq == (i + 1) % 16
        assert ack.acked_seqs == (i % 16,)
        assert host.unacked_count == 0


def test_device_discards_frames_out_of_sequence_and_asks_for_the_expected_one() -> None:
    device = BoardDeviceCodec()
    device.feed(build_frame(1, Heartbeat().encode()))
    events = list(device.events())
    assert [type(e).__name__ for e in events] == ["AckRequest"]
    assert device.expected_seq == 0
    assert device.link.frames_out_of_sequence == 1
    assert device.encode() == build_frame(0, b"")


def test_empty_host_frame_is_a_probe_and_consumes_no_seq() -> None:
    device = BoardDeviceCodec()
    device.expected_seq = 5
    device.feed(build_frame(0, b""))
    (event,) = device.events()
    assert type(event).__name__ == "AckRequest"
    assert device.expected_seq == 5


def test_go_back_n_retransmits_everything_after_the_lost_frame() -> None:
    host = synced_host()
    device = BoardDeviceCodec()
    f0 = host.encode(SetLight(1), now_s=0.0)
    f1 = host.encode(SetLight(2), now_s=0.001)
    f2 = host.encode(SetLight(3), now_s=0.002)
    # f0 is lost on the wire: the board drops f1 and f2 as out of sequence.
    device.feed(f1 + f2)
    assert all(type(e).__name__ == "AckRequest" for e in device.events())
    assert host.retransmit_deadline_s() == pytest.approx(RTO_INITIAL_S)
    assert host.frames_to_retransmit(RTO_INITIAL_S - 0.001) == []
    again = host.frames_to_retransmit(RTO_INITIAL_S)
    assert again == [f0, f1, f2]
    assert host.frames_retransmitted == 3
    assert host.rto_s == pytest.approx(2 * RTO_INITIAL_S)  # backed off until an ack
    device.feed(b"".join(again))
    assert [e.seq for e in device.events() if isinstance(e, HostFrame)] == [0, 1, 2]
    host.feed(device.encode(), rx_time_s=0.3)
    (ack,) = host.events()
    assert ack.acked_seqs == (0, 1, 2)
    assert ack.rtt_s is None  # Karn: retransmitted frames time nothing
    assert host.unacked_count == 0
    assert host.retransmit_deadline_s() is None


def test_partial_ack_retires_only_the_acknowledged_frames() -> None:
    host = synced_host()
    host.encode(Heartbeat(), now_s=0.0)
    host.encode(Heartbeat(), now_s=0.0)
    host.encode(Heartbeat(), now_s=0.0)
    host.feed(build_frame(2, b""), rx_time_s=0.004)
    (ack,) = host.events()
    assert ack.acked_seqs == (0, 1)
    assert ack.rtt_s == pytest.approx(0.004)
    assert host.unacked_count == 1


def test_ack_for_frames_never_sent_is_counted_not_applied() -> None:
    host = synced_host()
    host.encode(Heartbeat(), now_s=0.0)
    host.feed(build_frame(7, b""))
    (ack,) = host.events()
    assert ack.acked_seqs == ()
    assert host.bad_acks == 1
    assert host.unacked_count == 1


def test_adaptive_timeout_follows_rtt_and_is_clamped() -> None:
    host = synced_host()
    for i in range(50):
        host.encode(Heartbeat(), now_s=float(i))
        host.feed(build_frame((i + 1) % 16, b""), rx_time_s=i + 0.001)
        list(host.events())
    assert host.srtt_s == pytest.approx(0.001, rel=0.01)
    assert host.rto_s == RTO_MIN_S
    for i in range(50, 80):
        host.encode(Heartbeat(), now_s=float(i))
        host.feed(build_frame((i + 1) % 16, b""), rx_time_s=i + 6.0)
        list(host.events())
    assert host.rto_s == RTO_MAX_S


def test_timeout_back_off_stops_at_five_seconds() -> None:
    host = synced_host()
    host.encode(Heartbeat(), now_s=0.0)
    now = 0.0
    for _ in range(12):
        deadline = host.retransmit_deadline_s()
        assert deadline is not None
        now = deadline
        assert host.frames_to_retransmit(now)
    assert host.rto_s == RTO_MAX_S


def test_full_window_holds_frames_until_acks_make_room() -> None:
    host = synced_host()
    sent = [host.encode(Heartbeat()) for _ in range(MAX_UNACKED_FRAMES)]
    assert all(sent)
    assert host.encode(SetLight(5)) == b""
    assert host.held_count == 1
    assert host.last_seq == MAX_UNACKED_FRAMES % 16
    host.feed(build_frame(1, b""))
    list(host.events())
    assert host.data_to_send() == [build_frame(15, SetLight(5).encode())]
    assert host.held_count == 0


def test_resync_after_garbage_and_corruption() -> None:
    host = synced_host()
    good = build_frame(0, PressureSample(1, 1, 1.0).encode())
    corrupt = bytearray(good)
    corrupt[5] ^= 0x40
    # noise, a truncated frame, a corrupted frame, a bogus length, then two good frames
    stream = b"\x00\xff\x7e\x10" + good[:7] + bytes(corrupt) + b"\x3f" + good + good
    host.feed(stream)
    frames = list(host.events())
    assert [f.messages for f in frames] == [(PressureSample(1, 1, 1.0),)] * 2
    assert host.crc_errors == 1
    assert host.invalid_bytes == len(stream) - 2 * len(good)


def test_device_resyncs_too() -> None:
    device = BoardDeviceCodec()
    device.feed(b"\x41\x42\x43" + build_frame(0, Heartbeat().encode()))
    assert list(device.events()) == [HostFrame(0, (Heartbeat(),), None)]
    assert device.invalid_bytes == 3


def test_a_stream_split_at_every_boundary_decodes_the_same() -> None:
    stream = b"".join(frame for _, message, frame in BOARD_GOLDEN) + b"\x00\x7e"
    expected = [message for _, message, _ in BOARD_GOLDEN]
    for cut in range(len(stream) + 1):
        for second_cut in (cut, min(cut + 3, len(stream))):
            host = synced_host()
            got: list[BoardMessage] = []
            for part in (stream[:cut], stream[cut:second_cut], stream[second_cut:]):
                host.feed(part)
                got += [m for f in host.events() for m in f.messages]
            assert got == expected, cut


def test_host_raises_on_an_undecodable_payload_and_continues_behind_it() -> None:
    host = synced_host()
    host.encode(Heartbeat(), now_s=0.0)
    bad = build_frame(1, b"\x99\x00")
    good = build_frame(1, b"")
    host.feed(bad + good)
    with pytest.raises(BoardProtocolError) as info:
        list(host.events())
    assert info.value.data == b"\x99\x00"
    assert host.unacked_count == 1  # the bad frame's ack was not applied
    (frame,) = host.events()
    assert frame.acked_seqs == (0,)


@pytest.mark.parametrize(
    "payload",
    [b"\x81\x00", b"\x83\x00\x00\x00\x00\x09\x00\x00", b"\x84" + b"\x01" * 4 + b"\xff" * 16],
)
def test_malformed_board_payloads(payload: bytes) -> None:
    with pytest.raises(BoardProtocolError):
        decode_board_payload(payload)


@pytest.mark.parametrize(
    ("payload", "messages", "nack"),
    [
        (b"\x02\x13\x00", (), Nack(0x02, NackReason.OUT_OF_RANGE)),  # 19 ms watchdog
        (b"\x02\x14\x00", (ConfigWatchdog(20),), None),
        (b"\x02\xd0\x07", (ConfigWatchdog(2000),), None),
        (b"\x02\xd1\x07", (), Nack(0x02, NackReason.OUT_OF_RANGE)),
        (b"\x02\x00\x00", (), Nack(0x02, NackReason.OUT_OF_RANGE)),  # 0 never disables it
        (b"\x03\x02", (), Nack(0x03, NackReason.OUT_OF_RANGE)),
        (b"\x04\xe9\x03", (), Nack(0x04, NackReason.OUT_OF_RANGE)),  # 1001 permille
        (b"\x05\x00\x00", (), Nack(0x05, NackReason.OUT_OF_RANGE)),
        (b"\x01\x04\xe8", (Heartbeat(),), Nack(0x04, NackReason.MALFORMED)),
        (b"\x01\x42\x01", (Heartbeat(),), Nack(0x42, NackReason.UNKNOWN_MESSAGE)),
        (b"\x0a\x00\x00\x64\x00\x32\x00\x32\x00\x01", (SetFlow(0, 1, 50, 50, 1),), None),
        (b"\x0a\x00\x00\x63\x00\x32\x00\x32\x00\x01", (), Nack(0x0A, NackReason.OUT_OF_RANGE)),
        (b"\x0a\x00\x00\x64\x00\x32\x00\x31\x00\x01", (), Nack(0x0A, NackReason.OUT_OF_RANGE)),
        (b"\x0a\x00\x00\x64\x00", (), Nack(0x0A, NackReason.MALFORMED)),
    ],
)
def test_device_range_checks_and_nacks(
    payload: bytes, messages: tuple[HostMessage, ...], nack: Nack | None
) -> None:
    assert decode_host_payload(payload) == (messages, nack)


def test_board_timestamps_are_unwrapped_near_the_host_clock_and_across_the_wrap() -> None:
    host = synced_host()
    # The simulator's board clock is the host's CLOCK_MONOTONIC modulo 2^30 (MicroPython's
    # ticks_us): 2 ms before its fifth wrap.
    t_full_us = 5 * 2**30 - 2000
    rx_s = t_full_us / 1e6 + 0.0005
    samples = []
    for i, t_us in enumerate((t_full_us, t_full_us + 2000, t_full_us + 4000)):
        host.feed(build_frame(0, PressureSample(t_us % 2**30, i, 0.0).encode()), rx_s)
        (frame,) = host.events()
        (sample,) = frame.messages
        assert isinstance(sample, PressureSample)
        samples.append(sample)
    assert samples[0].rx_time_s == rx_s
    assert [s.t_us for s in samples] == [2**30 - 2000, 0, 2000]
    assert [s.board_time_s for s in samples] == pytest.approx(
        [t_full_us / 1e6, (t_full_us + 2000) / 1e6, (t_full_us + 4000) / 1e6]
    )


def test_the_firmware_builds_the_golden_resistance_trip_frame_and_runs_the_golden_set_flow() -> (
    None
):
    """Both ends byte for byte: firmware/board.py packs RESISTANCE_TRIP into its preallocated
    frame exactly as the golden frame, and executes the golden SET_FLOW."""
    from firmware.board import Board
    from tests.firmware.test_board import FakeHal

    hal = FakeHal()
    board = Board(hal, b"T")
    board.link.expected_seq = 15
    board.receive(h("0f 1f 0a e8 03 70 17 2c 01 23 04 02 eb 57 7e"))
    assert (board.flow_ul_min, board.resistance_limit_cr, board.resistance_persistence) == (
        1000,
        6000,
        2,
    )
    board.link.expected_seq = 0
    board.resistance_trigger_t_us, board.resistance_relay_t_us = 4_000_000, 4_002_000
    board.resistance_trip_cr, board.resistance_trip_flow_ul_min = 6123, 1000
    board.resistance_trip_cmmhg = 6123
    hal.sent.clear()
    board._send_resistance_trip()
    assert bytes(hal.sent) == h("14 10 86 00 09 3d 00 d0 10 3d 00 eb 17 e8 03 eb 17 a5 db 7e")
