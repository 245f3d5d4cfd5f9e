"""NE-1000 codec, byte for byte: commands, replies, framing, resynchronisation."""

from __future__ import annotations

import binascii

import pytest

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
    Ne1000CrcError,
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
    format_number,
)

STX, ETX = b"\x02", b"\x03"


def framed(body: bytes) -> bytes:
    """A safe-mode frame built independently of the codec's own helper."""
    crc = binascii.crc_hqx(body, 0)
    return STX + bytes([len(body) + 4]) + body + crc.to_bytes(2, "big") + ETX


COMMAND_TEXTS: list[tuple[Command, list[bytes]]] = [
    (Query(), [b""]),
    (GetVersion(), [b"VER"]),
    (SetDiameter(14.57), [b"DIA14.57"]),
    (SetDiameter(4.699), [b"DIA4.699"]),
    (SetDiameter(26.6), [b"DIA26.6"]),
    (SetRate(1.0), [b"RAT1MM"]),
    (SetRate(0.5), [b"RAT0.5MM"]),
    (SetRate(0.0123), [b"RAT12.3UM"]),
    (SetRate(2.5 / 60_000), [b"RAT2.5UH"]),
    (SetRate(1234.0), [b"RAT1234MM"]),
    (SetDirection(Direction.INFUSE), [b"DIRINF"]),
    (SetDirection(Direction.WITHDRAW), [b"DIRWDR"]),
    (SetDirection(Direction.REVERSE), [b"DIRREV"]),
    (SetVolume(500.0), [b"VOLUL", b"VOL500"]),
    (SetVolume(0.25), [b"VOLUL", b"VOL0.25"]),
    (SetVolume(12_345.0), [b"VOLML", b"VOL12.35"]),
    (SetVolume(0.0), [b"VOLUL", b"VOL0"]),
    (Run(), [b"RUN"]),
    (Stop(), [b"STP"]),
    (GetDispensed(), [b"DIS"]),
    (ClearDispensed(Direction.INFUSE), [b"CLDINF"]),
    (ClearDispensed(Direction.WITHDRAW), [b"CLDWDR"]),
    (SetSafeMode(0), [b"SAF0"]),
    (SetSafeMode(5), [b"SAF5"]),
    (SetSafeMode(255), [b"SAF255"]),
]


@pytest.mark.parametrize(("command", "texts"), COMMAND_TEXTS)
def test_basic_mode_command_is_address_text_cr(command: Command, texts: list[bytes]) -> None:
    assert Ne1000Codec(address=0).encode(command) == b"".join(b"0" + t + b"\r" for t in texts)
    assert Ne1000Codec(address=None).encode(command) == b"".join(t + b"\r" for t in texts)
    assert Ne1000Codec(address=12).encode_frames(command) == [b"12" + t + b"\r" for t in texts]


@pytest.mark.parametrize(("command", "texts"), COMMAND_TEXTS)
def test_safe_mode_command_is_framed_with_crc(command: Command, texts: list[bytes]) -> None:
    codec = Ne1000Codec(address=0, safe_mode=True)
    assert codec.encode_frames(command) == [framed(b"0" + t) for t in texts]


def test_safe_mode_saf0_matches_the_manuals_packet() -> None:
    codec = Ne1000Codec(address=None, safe_mode=True)
    assert codec.encode(SetSafeMode(0)) == bytes.fromhex("02 08 53 41 46 30 55 43 03")


def test_safe_mode_stop_literal_bytes() -> None:
    codec = Ne1000Codec(address=0, safe_mode=True)
    assert codec.encode(Stop()) == bytes.fromhex("02 08 30 53 54 50 b3 f9 03")


def test_encode_safe_mode_override_does_not_change_the_codec() -> None:
    codec = Ne1000Codec(address=0)
    assert codec.encode(Stop(), safe_mode=True) == framed(b"0STP")
    assert codec.encode(Stop()) == b"0STP\r"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (1, "1"), (0.1234, "0.123"), (1.2345, "1.234"), (12.3456, "12.35"),
     (999.96, "1000"), (9999, "9999"), (0.0004, "0")],
)  # fmt: skip
def test_numbers_have_at_most_four_digits(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("ml_min", [0.0, -1.0, float("nan"), float("inf"), 1e5, 1e-12])
def test_unrepresentable_rate_raises_value_error(ml_min: float) -> None:
    with pytest.raises(ValueError, match=r"SetRate\.ml_min"):
        Ne1000Codec().encode(SetRate(ml_min))


def test_rate_is_rounded_to_at_most_a_tenth_of_a_percent() -> None:
    for ml_min in (0.001234567, 0.0377, 1.23456, 7.777, 55.5555, 321.987):
        text = Ne1000Codec(address=None).encode(SetRate(ml_min)).decode()
        number, units = text[3:-3], text[-3:-1]
        factor = {"MM": 1.0, "UM": 1000.0, "MH": 60.0, "UH": 60_000.0}[units]
        assert abs(float(number) / factor - ml_min) / ml_min < 1e-3


@pytest.mark.parametrize(
    "make", [lambda: SetSafeMode(256), lambda: SetSafeMode(-1),
             lambda: ClearDispensed(Direction.REVERSE)],
)  # fmt: skip
def test_invalid_commands_are_refused_at_construction(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_negative_volume_and_diameter_raise() -> None:
    with pytest.raises(ValueError):
        Ne1000Codec().encode(SetVolume(-1.0))
    with pytest.raises(ValueError):
        Ne1000Codec().encode(SetDiameter(0.0))


# --- replies -------------------------------------------------------------------------------

REPLY_BODIES: list[tuple[bytes, Reply]] = [
    (b"00S", Prompt(0, PumpStatus.STOPPED)),
    (b"00I", Prompt(0, PumpStatus.INFUSING)),
    (b"07W", Prompt(7, PumpStatus.WITHDRAWING)),
    (b"00P", Prompt(0, PumpStatus.PAUSED)),
    (b"00T", Prompt(0, PumpStatus.PAUSE_PHASE)),
    (b"00U", Prompt(0, PumpStatus.USER_WAIT)),
    (b"99X", Prompt(99, PumpStatus.PURGING)),
    (b"00A?R", AlarmReply(0, AlarmKind.RESET)),
    (b"00A?S", AlarmReply(0, AlarmKind.STALLED)),
    (b"00A?T", AlarmReply(0, AlarmKind.SAFE_MODE_TIMEOUT)),
    (b"00A?E", AlarmReply(0, AlarmKind.PROGRAM_ERROR)),
    (b"00A?O", AlarmReply(0, AlarmKind.PHASE_OUT_OF_RANGE)),
    (b"00S?", ErrorReply(0, PumpStatus.STOPPED, "?")),
    (b"00S?NA", ErrorReply(0, PumpStatus.STOPPED, "NA")),
    (b"00I?OOR", ErrorReply(0, PumpStatus.INFUSING, "OOR")),
    (b"00S?COM", ErrorReply(0, PumpStatus.STOPPED, "COM")),
    (b"00S?IGN", ErrorReply(0, PumpStatus.STOPPED, "IGN")),
    (b"00SI1.234W0.5ML", DispensedReply(0, PumpStatus.STOPPED, 1.234, 0.5)),
    (b"00II250W0UL", DispensedReply(0, PumpStatus.INFUSING, 0.25, 0.0, VolumeUnits.UL)),
    (b"00SNE1000V3.928", VersionReply(0, PumpStatus.STOPPED, "NE1000V3.928")),
    (b"00S14.57", DataReply(0, PumpStatus.STOPPED, "14.57")),
    (b"00S1.5MM", DataReply(0, PumpStatus.STOPPED, "1.5MM")),
]


def replies_of(codec: Ne1000Codec, data: bytes) -> list[Reply]:
    codec.feed(data)
    return list(codec.replies())


@pytest.mark.parametrize(("body", "reply"), REPLY_BODIES)
def test_basic_reply_parses(body: bytes, reply: Reply) -> None:
    assert replies_of(Ne1000Codec(), STX + body + ETX) == [reply]


@pytest.mark.parametrize(("body", "reply"), REPLY_BODIES)
def test_safe_reply_parses(body: bytes, reply: Reply) -> None:
    assert replies_of(Ne1000Codec(safe_mode=True), framed(body)) == [reply]


@pytest.mark.parametrize(("body", "reply"), REPLY_BODIES)
def test_device_encodes_replies_as_parsed(body: bytes, reply: Reply) -> None:
    assert Ne1000DeviceCodec().encode_reply(reply) == STX + body + ETX
    assert Ne1000DeviceCodec(safe_mode=True).encode_reply(reply) == framed(body)


def test_dispensed_reply_is_converted_to_ml() -> None:
    (reply,) = replies_of(Ne1000Codec(), b"\x0200SI12.5W3UL\x03")
    assert isinstance(reply, DispensedReply)
    assert reply.infused_ml == pytest.approx(0.0125)
    assert reply.withdrawn_ml == pytest.approx(0.003)


@pytest.mark.parametrize("safe_mode", [False, True])
def test_replies_split_at_every_byte_boundary(safe_mode: bool) -> None:
    device = Ne1000DeviceCodec(safe_mode=safe_mode)
    sent: list[Reply] = [
        Prompt(0, PumpStatus.INFUSING),
        DispensedReply(0, PumpStatus.STOPPED, 1.5, 0.25),
    ]
    wire = b"".join(device.encode_reply(r) for r in sent)
    for cut in range(len(wire) + 1):
        codec = Ne1000Codec(safe_mode=safe_mode)
        got = replies_of(codec, wire[:cut]) + replies_of(codec, wire[cut:])
        assert got == sent, cut
        assert codec.discarded_bytes == 0


def test_replies_fed_one_byte_at_a_time() -> None:
    codec = Ne1000Codec(safe_mode=True)
    wire = framed(b"00S") + framed(b"00A?T")
    got: list[Reply] = []
    for byte in wire:
        got += replies_of(codec, bytes([byte]))
    assert got == [Prompt(0, PumpStatus.STOPPED), AlarmReply(0, AlarmKind.SAFE_MODE_TIMEOUT)]


@pytest.mark.parametrize("safe_mode", [False, True])
def test_garbage_before_a_reply_is_skipped_and_counted(safe_mode: bool) -> None:
    codec = Ne1000Codec(safe_mode=safe_mode)
    reply = framed(b"00S") if safe_mode else b"\x0200S\x03"
    garbage = b"\xff\x00noise\x03\r"
    assert replies_of(codec, garbage + reply) == [Prompt(0, PumpStatus.STOPPED)]
    assert codec.discarded_bytes == len(garbage)


def test_basic_frame_cut_short_by_the_next_stx_is_dropped() -> None:
    codec = Ne1000Codec()
    assert replies_of(codec, b"\x0200SI1.2\x0200I\x03") == [Prompt(0, PumpStatus.INFUSING)]
    assert codec.discarded_bytes == len(b"\x0200SI1.2")


def test_safe_false_start_does_not_hide_the_next_frame() -> None:
    # A stray STX with a plausible length must not make the decoder wait for bytes that belong
    # to the next frame.
    codec = Ne1000Codec(safe_mode=True)
    assert replies_of(codec, b"\x02\x20" + framed(b"00I")) == [Prompt(0, PumpStatus.INFUSING)]
    assert codec.discarded_bytes == 2


def test_safe_frame_with_a_dropped_byte_is_skipped() -> None:
    codec = Ne1000Codec(safe_mode=True)
    damaged = framed(b"00SI1W0ML")
    damaged = damaged[:5] + damaged[6:]
    assert replies_of(codec, damaged + framed(b"00S")) == [Prompt(0, PumpStatus.STOPPED)]
    assert codec.discarded_bytes == len(damaged)


def test_bad_crc_raises_once_then_later_frames_parse() -> None:
    codec = Ne1000Codec(safe_mode=True)
    bad = bytearray(framed(b"00I"))
    bad[-2] ^= 0x01
    codec.feed(bytes(bad) + framed(b"00S"))
    with pytest.raises(Ne1000CrcError) as caught:
        list(codec.replies())
    assert caught.value.data == bytes(bad)
    assert list(codec.replies()) == [Prompt(0, PumpStatus.STOPPED)]
    assert codec.crc_errors == 1
    assert codec.discarded_bytes == len(bad)


def test_crc_error_is_a_protocol_error_and_a_value_error() -> None:
    assert issubclass(Ne1000CrcError, Ne1000ProtocolError)
    assert issubclass(Ne1000ProtocolError, ValueError)


@pytest.mark.parametrize("body", [b"0S", b"xxS", b"00Q", b"00A?Z", b"00A", b"00S?WHAT"])
def test_delimited_frame_that_is_not_a_reply_raises_once(body: bytes) -> None:
    codec = Ne1000Codec()
    codec.feed(STX + body + ETX + b"\x0200W\x03")
    with pytest.raises(Ne1000ProtocolError) as caught:
        list(codec.replies())
    assert caught.value.data == STX + body + ETX
    assert list(codec.replies()) == [Prompt(0, PumpStatus.WITHDRAWING)]


def test_mode_switch_between_frames_applies_to_the_next_frame() -> None:
    codec = Ne1000Codec()
    codec.feed(b"\x0200S\x03" + framed(b"00I"))
    replies = codec.replies()
    assert next(replies) == Prompt(0, PumpStatus.STOPPED)
    codec.safe_mode = True
    assert next(replies) == Prompt(0, PumpStatus.INFUSING)


def test_clear_drops_a_partial_frame() -> None:
    codec = Ne1000Codec()
    codec.feed(b"\x0200S")
    codec.clear()
    assert replies_of(codec, b"I\x03") == []
    assert codec.discarded_bytes == len(b"\x0200SI\x03")


# --- device side ---------------------------------------------------------------------------


def commands_of(
    codec: Ne1000DeviceCodec, data: bytes
) -> list[tuple[int | None, str, str, str | None]]:
    codec.feed(data)
    return [(c.address, c.mnemonic, c.args, c.error) for c in codec.commands()]


def test_device_parses_basic_commands_like_the_pump() -> None:
    codec = Ne1000DeviceCodec()
    wire = b"0RAT 1.5 mm\r\rDIA14.57\r12stp\r\n0\r7.5\r"
    assert commands_of(codec, wire) == [
        (0, "RAT", "1.5MM", None),
        (None, "", "", None),
        (None, "DIA", "14.57", None),
        (12, "STP", "", None),
        (0, "", "", None),  # a CRLF's LF is stripped from the next line
        (7, "", ".5", None),
    ]


def test_device_parses_safe_packets_and_flags_bad_crc() -> None:
    codec = Ne1000DeviceCodec(safe_mode=True)
    bad = bytearray(framed(b"0RUN"))
    bad[3] ^= 0x20  # 'R' -> 'r': still printable, so only the CRC can tell
    got = commands_of(codec, b"0STP\r" + framed(b"SAF0") + bytes(bad) + framed(b"0DIS"))
    assert got == [
        (None, "SAF", "0", None),
        (None, "", "", "crc"),
        (0, "DIS", "", None),
    ]
    assert codec.discarded_bytes == len(b"0STP\r") + len(bad)


def test_device_drops_an_endless_line() -> None:
    codec = Ne1000DeviceCodec()
    assert commands_of(codec, b"A" * 200) == []
    assert commands_of(codec, b"\rRUN\r") == [(None, "", "", None), (None, "RUN", "", None)]
