"""NE-1000 codec under hypothesis: arbitrary bytes never escape as anything but a protocol error,
and what one side encodes the other side decodes to the same thing."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ne1000.codec import (
    AlarmKind,
    AlarmReply,
    ClearDispensed,
    Command,
    DataReply,
    Direction,
    DispensedReply,
    ErrorReply,
    GetDispensed,
    GetVersion,
    Ne1000Codec,
    Ne1000DeviceCodec,
    Ne1000ProtocolError,
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
    VolumeUnits,
    command_bodies,
)
from drivers.sim.ne1000_device import Ne1000Device

FUZZ = settings(max_examples=300, deadline=None)

chunks = st.lists(st.binary(max_size=40), max_size=8)
# Bytes near the protocol's own make the decoders walk their interesting paths more often.
protocolish = st.lists(
    st.one_of(
        st.sampled_from([b"\x02", b"\x03", b"\r", b"00S", b"\x02\x07", b"?", b"A?T", b"00SI1W2ML"]),
        st.binary(max_size=6),
    ),
    max_size=30,
).map(b"".join)


def drain_host(codec: Ne1000Codec) -> list[Reply]:
    replies: list[Reply] = []
    for _ in range(1000):
        try:
            replies.extend(codec.replies())
            return replies
        except Ne1000ProtocolError:
            continue
    raise AssertionError("replies() kept raising without consuming input")


@FUZZ
@given(chunks, st.booleans())
def test_host_decoder_raises_only_protocol_errors(parts: list[bytes], safe_mode: bool) -> None:
    codec = Ne1000Codec(safe_mode=safe_mode)
    for part in parts:
        codec.feed(part)
        drain_host(codec)
    assert codec.discarded_bytes <= sum(map(len, parts))


@FUZZ
@given(protocolish, st.booleans())
def test_host_decoder_survives_protocol_like_noise(data: bytes, safe_mode: bool) -> None:
    codec = Ne1000Codec(safe_mode=safe_mode)
    codec.feed(data)
    drain_host(codec)
    # Whatever the noise left half-parsed, a clean reply after a clear gets through.
    codec.clear()
    tail = b"\x0200S\x03" if not safe_mode else b"\x02\x0700S\xaa\xa6\x03"
    codec.feed(tail)
    assert drain_host(codec) == [Prompt(0, PumpStatus.STOPPED)]


@FUZZ
@given(st.one_of(chunks.map(b"".join), protocolish), st.booleans())
def test_device_decoder_never_raises(data: bytes, safe_mode: bool) -> None:
    codec = Ne1000DeviceCodec(safe_mode=safe_mode)
    codec.feed(data)
    for command in codec.commands():
        assert command.error in (None, "crc")


@FUZZ
@given(st.one_of(chunks.map(b"".join), protocolish), st.floats(0, 100))
def test_device_model_answers_noise_without_raising(data: bytes, now_s: float) -> None:
    device = Ne1000Device()
    device.receive(data, now_s)
    device.advance(0.5, 0.0)


statuses = st.sampled_from(list(PumpStatus))
addresses = st.integers(0, 99)
volumes_ml = st.integers(0, 9999).map(lambda n: n / 1000)
data_text = st.text(alphabet="0123456789.ABCDEFGHJKLMNOPQRSZ", min_size=1, max_size=12).filter(
    lambda t: not t.startswith("I") and not t[0].isalpha()
)

replies: st.SearchStrategy[Reply] = st.one_of(
    st.builds(Prompt, addresses, statuses),
    st.builds(AlarmReply, addresses, st.sampled_from(list(AlarmKind))),
    st.builds(ErrorReply, addresses, statuses, st.sampled_from(["?", "NA", "OOR", "COM", "IGN"])),
    st.builds(DispensedReply, addresses, statuses, volumes_ml, volumes_ml, st.just(VolumeUnits.ML)),
    st.builds(VersionReply, addresses, statuses, st.sampled_from(["NE1000V3.928", "NE500V2.1"])),
    st.builds(DataReply, addresses, statuses, data_text),
)


@FUZZ
@given(st.lists(replies, min_size=1, max_size=5), st.booleans(), st.integers(0, 60))
def test_replies_round_trip(sent: list[Reply], safe_mode: bool, cut: int) -> None:
    device = Ne1000DeviceCodec(safe_mode=safe_mode)
    wire = b"".join(device.encode_reply(r) for r in sent)
    host = Ne1000Codec(safe_mode=safe_mode)
    host.feed(wire[:cut])
    got = list(host.replies())
    host.feed(wire[cut:])
    got += list(host.replies())
    assert got == sent
    assert host.discarded_bytes == 0


directions = st.sampled_from([Direction.INFUSE, Direction.WITHDRAW])
commands: st.SearchStrategy[Command] = st.one_of(
    st.just(Query()),
    st.just(GetVersion()),
    st.just(Run()),
    st.just(Stop()),
    st.just(GetDispensed()),
    st.builds(SetDiameter, st.floats(0.1, 50.0)),
    st.builds(SetRate, st.floats(0.001, 100.0)),
    st.builds(SetDirection, st.sampled_from(list(Direction))),
    st.builds(SetVolume, st.one_of(st.just(0.0), st.floats(0.1, 9_000_000.0))),
    st.builds(ClearDispensed, directions),
    st.builds(SetSafeMode, st.integers(0, 255)),
)


@FUZZ
@given(st.lists(commands, min_size=1, max_size=5), st.booleans(), st.sampled_from([None, 0, 42]))
def test_commands_round_trip(sent: list[Command], safe_mode: bool, address: int | None) -> None:
    host = Ne1000Codec(address=address, safe_mode=safe_mode)
    device = Ne1000DeviceCodec(safe_mode=safe_mode)
    device.feed(b"".join(host.encode(c) for c in sent))
    got = [(p.address, p.mnemonic + p.args, p.error) for p in device.commands()]
    expected = [(address, text, None) for c in sent for text in command_bodies(c)]
    assert got == expected
    assert device.discarded_bytes == 0


@FUZZ
@given(st.floats(1e-4, 5.0))
def test_rate_reaches_the_pump_within_a_tenth_of_a_percent(ml_min: float) -> None:
    device = Ne1000Device(syringe_diameter_mm=50.0)
    host = Ne1000Codec()
    out = device.receive(host.encode(SetRate(ml_min)), 0.0)
    host.feed(out)
    (reply,) = list(host.replies())
    if isinstance(reply, ErrorReply):
        assert reply.code == "OOR"  # the model's plunger speed range, not the codec
        return
    assert math.isclose(device.rate_ml_min, ml_min, rel_tol=1e-3)


@FUZZ
@given(st.one_of(st.just(0.0), st.floats(1.0, 9_000_000.0)))
def test_volume_reaches_the_pump_within_a_tenth_of_a_percent(ul: float) -> None:
    device = Ne1000Device()
    host = Ne1000Codec()
    host.feed(device.receive(host.encode(SetVolume(ul)), 0.0))
    assert [type(r) for r in host.replies()] == [Prompt, Prompt]
    assert math.isclose(device.target_volume_ml * 1000.0, ul, rel_tol=1e-3, abs_tol=5e-4)
