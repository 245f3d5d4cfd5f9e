"""The Tic codec byte for byte: USB control transfers, TTL serial packets, variables.

The expected values are the examples of the Tic user's guide (0J71, sections 9 and 11) and the
numbers of tic_protocol.h (pololu-tic-software c136568), written out here as literals so that a
change in the codec cannot change the expectation with it.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.tic.codec import (
    COMMAND_FORMATS,
    STATUS_READ_LENGTH,
    USB_ONLY_COMMANDS,
    BlockRead,
    Command,
    CommandFormat,
    ControlTransfer,
    HomeDirection,
    MiscFlags,
    OperationState,
    SetSetting,
    Setting,
    StepMode,
    TicCommand,
    TicErrors,
    TicProduct,
    TicProtocolError,
    TicSerialDecoder,
    TicStatus,
    Var,
    crc7,
    current_limit_code,
    decode_usb,
    encode_serial,
    encode_usb,
    get_settings,
    get_variables,
    go_home,
    quick,
    set_max_accel,
    set_setting_bytes,
    set_step_mode,
    set_target_position,
    set_target_velocity,
    split_read,
)

HEADER_COMMANDS = {
    "SET_TARGET_POSITION": 0xE0,
    "SET_TARGET_VELOCITY": 0xE3,
    "HALT_AND_SET_POSITION": 0xEC,
    "HALT_AND_HOLD": 0x89,
    "GO_HOME": 0x97,
    "RESET_COMMAND_TIMEOUT": 0x8C,
    "DEENERGIZE": 0x86,
    "ENERGIZE": 0x85,
    "EXIT_SAFE_START": 0x83,
    "ENTER_SAFE_START": 0x8F,
    "RESET": 0xB0,
    "CLEAR_DRIVER_ERROR": 0x8A,
    "SET_MAX_SPEED": 0xE6,
    "SET_STARTING_SPEED": 0xE5,
    "SET_MAX_ACCEL": 0xEA,
    "SET_MAX_DECEL": 0xE9,
    "SET_STEP_MODE": 0x94,
    "SET_CURRENT_LIMIT": 0x91,
    "SET_DECAY_MODE": 0x92,
    "SET_AGC_OPTION": 0x98,
    "GET_VARIABLE": 0xA1,
    "GET_VARIABLE_AND_CLEAR_ERRORS_OCCURRED": 0xA2,
    "GET_SETTING": 0xA8,
    "SET_SETTING": 0x13,
    "REINITIALIZE": 0x10,
}

HEADER_VARIABLES = {
    "OPERATION_STATE": (0x00, 1),
    "MISC_FLAGS1": (0x01, 1),
    "ERROR_STATUS": (0x02, 2),
    "ERRORS_OCCURRED": (0x04, 4),
    "PLANNING_MODE": (0x09, 1),
    "TARGET_POSITION": (0x0A, 4),
    "TARGET_VELOCITY": (0x0E, 4),
    "STARTING_SPEED": (0x12, 4),
    "MAX_SPEED": (0x16, 4),
    "MAX_DECEL": (0x1A, 4),
    "MAX_ACCEL": (0x1E, 4),
    "CURRENT_POSITION": (0x22, 4),
    "CURRENT_VELOCITY": (0x26, 4),
    "ACTING_TARGET_POSITION": (0x2A, 4),
    "TIME_SINCE_LAST_STEP": (0x2E, 4),
    "DEVICE_RESET": (0x32, 1),
    "VIN_VOLTAGE": (0x33, 2),
    "UP_TIME": (0x35, 4),
    "ENCODER_POSITION": (0x39, 4),
    "RC_PULSE_WIDTH": (0x3D, 2),
    "STEP_MODE": (0x49, 1),
    "CURRENT_LIMIT": (0x4A, 1),
    "DECAY_MODE": (0x4B, 1),
    "INPUT_STATE": (0x4C, 1),
    "LAST_MOTOR_DRIVER_ERROR": (0x55, 1),
}

HEADER_SETTINGS = {
    "CONTROL_MODE": (0x01, 1),
    "DISABLE_SAFE_START": (0x03, 1),
    "COMMAND_TIMEOUT": (0x09, 2),
    "SERIAL_OPTIONS_BYTE": (0x0B, 1),
    "CURRENT_LIMIT": (0x40, 1),
    "STEP_MODE": (0x41, 1),
    "MAX_SPEED": (0x47, 4),
    "MAX_DECEL": (0x4B, 4),
    "MAX_ACCEL": (0x4F, 4),
    "SOFT_ERROR_RESPONSE": (0x53, 1),
    "SOFT_ERROR_POSITION": (0x54, 4),
    "HOMING_SPEED_TOWARDS": (0x61, 4),
    "HOMING_SPEED_AWAY": (0x65, 4),
}


def test_command_codes_are_those_of_tic_protocol_h() -> None:
    assert {c.name: int(c) for c in COMMAND_FORMATS} == HEADER_COMMANDS


@pytest.mark.parametrize(("name", "where"), HEADER_VARIABLES.items())
def test_variable_offsets_and_sizes_are_those_of_tic_protocol_h(
    name: str, where: tuple[int, int]
) -> None:
    field = getattr(Var, name)
    assert (field.offset, field.size) == where


@pytest.mark.parametrize(("name", "where"), HEADER_SETTINGS.items())
def test_setting_offsets_and_sizes_are_those_of_tic_protocol_h(
    name: str, where: tuple[int, int]
) -> None:
    field = getattr(Setting, name)
    assert (field.offset, field.size) == where


def test_error_bits_are_those_of_tic_protocol_h() -> None:
    assert TicErrors.COMMAND_TIMEOUT == 1 << 6
    assert TicErrors.SAFE_START_VIOLATION == 1 << 7
    assert TicErrors.INTENTIONALLY_DEENERGIZED == 1 << 0
    assert TicErrors.SERIAL_CRC == 1 << 19
    assert MiscFlags.POSITION_UNCERTAIN == 1 << 1 and MiscFlags.HOMING_ACTIVE == 1 << 4
    assert (int(OperationState.NORMAL), int(OperationState.SOFT_ERROR)) == (10, 4)


# --- USB, user's guide section 11 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "transfer"),
    [
        (quick(TicCommand.HALT_AND_HOLD), ControlTransfer(0x40, 0x89, 0, 0, b"")),
        (set_step_mode(StepMode.MICROSTEP8), ControlTransfer(0x40, 0x94, 0x0003, 0, b"")),
        (set_target_position(1_234_567_890), ControlTransfer(0x40, 0xE0, 0x02D2, 0x4996, b"")),
        (set_target_position(-1), ControlTransfer(0x40, 0xE0, 0xFFFF, 0xFFFF, b"")),
        (set_target_velocity(-2_000_000), ControlTransfer(0x40, 0xE3, 0x7B80, 0xFFE1, b"")),
        (go_home(HomeDirection.FORWARD), ControlTransfer(0x40, 0x97, 1, 0, b"")),
        # tic_handle.c tic_go_home: libusbp_control_transfer(0x40, TIC_CMD_GO_HOME, direction)
        (go_home(HomeDirection.REVERSE), ControlTransfer(0x40, 0x97, 0, 0, b"")),
        (get_variables(0x0A, 4), ControlTransfer(0xC0, 0xA1, 0, 0x000A, 4)),
        (get_variables(0, 77, clear_errors_occurred=True), ControlTransfer(0xC0, 0xA2, 0, 0, 77)),
        (SetSetting(0x41, 3), ControlTransfer(0x40, 0x13, 0x0003, 0x0041, b"")),
        (quick(TicCommand.RESET_COMMAND_TIMEOUT), ControlTransfer(0x40, 0x8C, 0, 0, b"")),
    ],
)
def test_usb_requests_are_the_guides_control_transfers(
    request_: Command | BlockRead | SetSetting, transfer: ControlTransfer
) -> None:
    assert encode_usb(request_) == transfer


def test_a_setting_is_written_one_byte_per_request_little_endian() -> None:
    assert set_setting_bytes(Setting.COMMAND_TIMEOUT, 1000) == [
        SetSetting(0x09, 0xE8),
        SetSetting(0x0A, 0x03),
    ]


def test_the_homing_speeds_are_written_at_their_offsets_little_endian() -> None:
    # tic_protocol.h: TIC_SETTING_HOMING_SPEED_TOWARDS 0x61, TIC_SETTING_HOMING_SPEED_AWAY 0x65,
    # each a uint32 (tic_settings.c packs them p[0] + (p[1] << 8) + ...).
    assert set_setting_bytes(Setting.HOMING_SPEED_TOWARDS, 10_000_000) == [
        SetSetting(0x61, 0x80),
        SetSetting(0x62, 0x96),
        SetSetting(0x63, 0x98),
        SetSetting(0x64, 0x00),
    ]
    assert [encode_usb(r) for r in set_setting_bytes(Setting.HOMING_SPEED_AWAY, 2_000_000)] == [
        ControlTransfer(0x40, 0x13, 0x80, 0x65, b""),
        ControlTransfer(0x40, 0x13, 0x84, 0x66, b""),
        ControlTransfer(0x40, 0x13, 0x1E, 0x67, b""),
        ControlTransfer(0x40, 0x13, 0x00, 0x68, b""),
    ]


def test_decode_usb_refuses_unknown_requests_and_wrong_directions() -> None:
    with pytest.raises(TicProtocolError):
        decode_usb(0x40, 0x55, 0, 0, 0)
    with pytest.raises(TicProtocolError):
        decode_usb(0x40, 0xA1, 0, 0, 4)  # a block read sent as OUT
    with pytest.raises(TicProtocolError):
        decode_usb(0x40, 0x94, 0x80, 0, 0)  # 7-bit write with a value above 127


# --- TTL serial, user's guide section 9 -------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (quick(TicCommand.HALT_AND_HOLD), b"\x89"),
        (set_step_mode(StepMode.MICROSTEP8), b"\x94\x03"),
        (set_target_position(1_234_567_890), b"\xe0\x05\x52\x02\x16\x49"),
        (set_target_position(-1), b"\xe0\x0f\x7f\x7f\x7f\x7f"),
        (get_variables(0x0A, 4), b"\xa1\x0a\x04"),
        (get_settings(0x09, 2), b"\xa8\x09\x02"),
        (go_home(HomeDirection.REVERSE), b"\x97\x00"),  # a 7-bit write: command, direction
        (go_home(HomeDirection.FORWARD), b"\x97\x01"),
        (get_settings(0x61, 8), b"\xa8\x61\x08"),  # both homing speeds in one read
    ],
)
def test_compact_protocol_bytes_are_the_guides(request_: Command | BlockRead, wire: bytes) -> None:
    assert encode_serial(request_) == wire


def test_pololu_protocol_clears_the_command_bit_after_the_device_number() -> None:
    assert (
        encode_serial(set_step_mode(StepMode.MICROSTEP8), device_number=14) == b"\xaa\x0e\x14\x03"
    )


def test_crc7_is_the_guides_example_and_is_appended_to_the_packet() -> None:
    assert crc7(b"\x83\x01") == 0x17
    packet = encode_serial(quick(TicCommand.EXIT_SAFE_START), crc=True)
    assert packet == b"\x83" + bytes((crc7(b"\x83"),))


def test_serial_refuses_usb_only_commands_and_long_reads() -> None:
    with pytest.raises(ValueError, match="USB-only"):
        encode_serial(quick(TicCommand.REINITIALIZE))
    with pytest.raises(ValueError, match=r"1\.\.15"):
        encode_serial(get_variables(0, 16))


def test_a_long_read_is_split_into_serial_sized_reads() -> None:
    parts = split_read(get_variables(0, STATUS_READ_LENGTH), 15)
    assert [(p.offset, p.length) for p in parts] == [
        (0, 15),
        (15, 15),
        (30, 15),
        (45, 15),
        (60, 15),
        (75, 2),
    ]


@st.composite
def serial_requests(draw: st.DrawFn) -> Command | BlockRead:
    command = draw(st.sampled_from(list(COMMAND_FORMATS)))
    fmt = COMMAND_FORMATS[command]
    if command in USB_ONLY_COMMANDS or fmt is CommandFormat.SET_SETTING:
        command, fmt = TicCommand.ENERGIZE, CommandFormat.QUICK
    if fmt is CommandFormat.BLOCK_READ:
        return BlockRead(command, draw(st.integers(0, 0x7F)), draw(st.integers(1, 15)))
    if fmt is CommandFormat.WRITE_32BIT:
        return Command(command, draw(st.integers(-(1 << 31), (1 << 31) - 1)))
    if fmt is CommandFormat.WRITE_7BIT:
        return Command(command, draw(st.integers(0, 127)))
    return Command(command)


@given(st.lists(serial_requests(), max_size=8), st.booleans(), st.booleans())
def test_the_device_side_decoder_reads_back_every_encoded_packet(
    requests: list[Command | BlockRead], pololu: bool, crc: bool
) -> None:
    number = 14 if pololu else None
    wire = b"".join(encode_serial(r, device_number=number, crc=crc) for r in requests)
    decoder = TicSerialDecoder(crc=crc)
    assert decoder.feed(wire) == requests
    assert decoder.errors == TicErrors(0)


@given(serial_requests())
def test_usb_encoding_round_trips_through_the_device_side(request_: Command | BlockRead) -> None:
    transfer = encode_usb(request_)
    length = transfer.data_or_length if isinstance(transfer.data_or_length, int) else 0
    decoded = decode_usb(
        transfer.bm_request_type, transfer.b_request, transfer.w_value, transfer.w_index, length
    )
    assert decoded == request_


def test_decoder_flags_a_packet_cut_short_by_a_new_command() -> None:
    decoder = TicSerialDecoder()
    assert decoder.feed(b"\xe0\x05\x52" + b"\x89") == [quick(TicCommand.HALT_AND_HOLD)]
    assert TicErrors.SERIAL_FORMAT in decoder.errors and TicErrors.SERIAL_ERROR in decoder.errors


def test_decoder_drops_a_packet_with_a_bad_crc() -> None:
    decoder = TicSerialDecoder(crc=True)
    assert decoder.feed(b"\x89\x00") == []
    assert TicErrors.SERIAL_CRC in decoder.errors


def test_decoder_skips_pololu_packets_for_another_device() -> None:
    decoder = TicSerialDecoder(device_number=14)
    wire = encode_serial(quick(TicCommand.ENERGIZE), device_number=15)
    assert decoder.feed(wire) == []
    assert decoder.errors == TicErrors(0)


# --- values -------------------------------------------------------------------------------------


def test_values_outside_a_commands_format_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="SET_STEP_MODE value = 128"):
        Command(TicCommand.SET_STEP_MODE, 128)
    with pytest.raises(ValueError, match="max accel = 99"):
        set_max_accel(99)
    with pytest.raises(ValueError, match="block read length = 129"):
        get_variables(0, 129)


def test_current_limit_code_is_32_ma_per_step_on_the_t825() -> None:
    assert current_limit_code(TicProduct.T825, 1000) == 31
    with pytest.raises(ValueError, match="give the code"):
        current_limit_code(TicProduct.T500, 1000)


def test_status_decodes_the_guides_target_position_example() -> None:
    block = bytearray(STATUS_READ_LENGTH)
    block[Var.OPERATION_STATE.offset] = OperationState.NORMAL
    block[Var.MISC_FLAGS1.offset] = MiscFlags.ENERGIZED | MiscFlags.POSITION_UNCERTAIN
    block[0x0A:0x0E] = b"\xd2\x02\x96\x49"
    struct.pack_into("<i", block, 0x22, -5)
    struct.pack_into("<H", block, 0x02, TicErrors.COMMAND_TIMEOUT)
    status = TicStatus.decode(bytes(block))
    assert status.target_position_usteps == 1_234_567_890
    assert status.position_usteps == -5
    assert status.energized and status.position_uncertain and not status.homing
    assert status.errors == TicErrors.COMMAND_TIMEOUT
    with pytest.raises(TicProtocolError):
        TicStatus.decode(bytes(block[:10]))
