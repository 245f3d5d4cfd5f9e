"""Hypothesis: whatever arrives on the wire, the codecs raise nothing but BoardProtocolError,
and every message the spec allows survives a round trip through the bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ioboard.codec import (
    BoardEvent,
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
    SetCutoff,
    SetLight,
    SetPumpRelay,
    Trip,
    ZeroPressure,
    build_frame,
)
from drivers.ioboard.device_codec import BoardDeviceCodec, HostFrame
from drivers.sim.ioboard_device import IoBoardDevice

FUZZ = settings(max_examples=300, deadline=None)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
cmmhg_i16 = st.integers(-0x8000, 0x7FFF).map(lambda c: c / 100)
cmmhg_u16 = st.integers(0, 0xFFFF).map(lambda c: c / 100)

host_messages: st.SearchStrategy[HostMessage] = st.one_of(
    st.just(Heartbeat()),
    st.integers(20, 2000).map(ConfigWatchdog),
    st.booleans().map(SetPumpRelay),
    st.integers(0, 1000).map(SetLight),
    st.integers(1, 0xFFFF).map(lambda c: SetCutoff(c / 100)),
    st.just(ResetTrip()),
    st.just(GetStatus()),
    st.just(Identify()),
    st.just(ZeroPressure()),
)

board_messages: st.SearchStrategy[BoardMessage] = st.one_of(
    st.builds(PressureSample, u32, u16, cmmhg_i16),
    st.builds(
        BoardStatus,
        u32,
        st.booleans(),
        st.booleans(),
        st.integers(0, 7).map(Trip),
        u16,
        u16,
        cmmhg_u16,
        cmmhg_i16,
    ),
    st.builds(BoardEvent, u32, st.sampled_from(EventKind), cmmhg_i16),
    st.builds(
        BoardIdent,
        u8,
        st.tuples(u8, u8, u8),
        st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=16),
    ),
    st.builds(Nack, u8, st.sampled_from(NackReason)),
)


def _drain_host(codec: BoardHostCodec) -> None:
    for _ in range(1000):
        try:
            list(codec.events())
            return
        except BoardProtocolError:
            continue


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_host_codec_survives_arbitrary_bytes(chunks: list[bytes]) -> None:
    codec = BoardHostCodec()
    for chunk in chunks:
        codec.feed(chunk)
        _drain_host(codec)
        if codec.synced:
            codec.encode(Heartbeat())
            codec.frames_to_retransmit(1e9)


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_device_codec_survives_arbitrary_bytes(chunks: list[bytes]) -> None:
    codec = BoardDeviceCodec()
    for chunk in chunks:
        codec.feed(chunk)
        for _ in codec.events():
            pass


@FUZZ
@given(st.integers(0, 15), st.binary(max_size=59))
def test_any_well_framed_payload_decodes_or_raises_the_codec_error(
    seq: int, payload: bytes
) -> None:
    host = BoardHostCodec()
    host.feed(build_frame(0, b"") + build_frame(seq, payload))
    _drain_host(host)
    device = BoardDeviceCodec()
    device.expected_seq = seq
    device.feed(build_frame(seq, payload))
    list(device.events())


@FUZZ
@given(st.lists(host_messages, min_size=1, max_size=6), st.integers(0, 15))
def test_host_messages_round_trip(messages: list[HostMessage], seq: int) -> None:
    host = BoardHostCodec()
    host.feed(build_frame(seq, b""))
    list(host.events())
    device = BoardDeviceCodec()
    device.expected_seq = seq
    device.feed(host.encode(*messages))
    assert list(device.events()) == [HostFrame(seq, tuple(messages), None)]


@FUZZ
@given(st.lists(board_messages, min_size=1, max_size=2), st.binary(max_size=20))
def test_board_messages_round_trip_behind_noise(messages: list[BoardMessage], noise: bytes) -> None:
    device = BoardDeviceCodec()
    frames = b"".join(device.encode(m) for m in messages)
    host = BoardHostCodec()
    # Noise can hide a frame only by posing as one with a valid CRC; a trailing sync byte
    # bounds the damage to what came before it.
    host.feed(noise + b"\x7e" * 64 + frames)
    got = []
    for _ in range(100):
        try:
            got += [m for f in host.events() for m in f.messages]
            break
        except BoardProtocolError:
            continue
    assert got[-len(messages) :] == messages


@FUZZ
@given(st.lists(st.binary(max_size=80), max_size=8), st.lists(host_messages, max_size=8))
def test_device_model_survives_arbitrary_host_bytes(
    chunks: list[bytes], messages: list[HostMessage]
) -> None:
    device = IoBoardDevice()
    now_s = 1.0
    for chunk in chunks:
        device.receive(chunk, now_s)
        now_s += 0.001
        device.advance(now_s, 10.0)
    for i, message in enumerate(messages):
        device.receive(build_frame(device.expected_seq, message.encode()), now_s + i * 0.001)
