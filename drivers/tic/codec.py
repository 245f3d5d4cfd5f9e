"""Pololu Tic stepper controller: commands, variables and settings as numbers and bytes, no I/O.

Sources, and which we followed where they differ:

- Command codes, variable and setting offsets, error and flag bits: ``include/tic_protocol.h`` of
  pololu/pololu-tic-software at commit c136568 (2026-02-10, libpololu-tic 1.8.3). Variable types
  from ``lib/tic_variables.c`` of the same commit (errors occurred is 32-bit there).
  ``docs/protocols.md`` warns that one stored copy of the header puts the current position at
  0x21: this header, ticlib and the current user's guide agree on 0x22, which we use
  (`test_codec.py` pins every offset to the header's value).
- USB request shapes: ``lib/tic_handle.c`` (the same commit) and the Tic user's guide (Pololu
  document 0J71), section 11: quick and 7-bit and 32-bit writes are vendor OUT requests
  (bmRequestType 0x40, bRequest = command, a 32-bit value split as wValue = bits 15..0,
  wIndex = bits 31..16); block reads are vendor IN requests (0xC0, wIndex = offset, wLength =
  length, 1..128); "set setting" (USB only) puts the byte in wValue and the offset in wIndex.
- TTL serial: the user's guide, section 9 (compact and Pololu protocols, CRC-7). The 2018 PDF
  of the guide prints the MSbs byte of its 32-bit example (1,234,567,890) as 0x0A; the current
  web edition prints 0x05, which is what its own rule gives (bit 0 is the top bit of the least
  significant data byte): we follow the rule and the web edition. Serial block reads are 1..15
  bytes. The Tic answers a block read with raw 8-bit bytes and no CRC (the "7-bit responses" and
  "CRC for responses" serial options are not supported here), and 14-bit device numbers are not.

Units are the Tic's: positions in microsteps, velocities in microsteps per 10,000 s, accelerations
in microsteps per 100 s^2, the current limit as a product-specific code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag

TIC_VENDOR_ID = 0x1FFB


class TicProduct(IntEnum):
    T825 = 0x00B3
    T834 = 0x00B5
    T500 = 0x00BD
    N825 = 0x00C3
    T249 = 0x00C9
    TIC_36V4 = 0x00CB


class TicCommand(IntEnum):
    SET_TARGET_POSITION = 0xE0
    SET_TARGET_VELOCITY = 0xE3
    HALT_AND_SET_POSITION = 0xEC
    HALT_AND_HOLD = 0x89
    GO_HOME = 0x97
    RESET_COMMAND_TIMEOUT = 0x8C
    DEENERGIZE = 0x86
    ENERGIZE = 0x85
    EXIT_SAFE_START = 0x83
    ENTER_SAFE_START = 0x8F
    RESET = 0xB0
    CLEAR_DRIVER_ERROR = 0x8A
    SET_MAX_SPEED = 0xE6
    SET_STARTING_SPEED = 0xE5
    SET_MAX_ACCEL = 0xEA
    SET_MAX_DECEL = 0xE9
    SET_STEP_MODE = 0x94
    SET_CURRENT_LIMIT = 0x91
    SET_DECAY_MODE = 0x92
    SET_AGC_OPTION = 0x98
    GET_VARIABLE = 0xA1
    GET_VARIABLE_AND_CLEAR_ERRORS_OCCURRED = 0xA2
    GET_SETTING = 0xA8
    SET_SETTING = 0x13
    REINITIALIZE = 0x10
    START_BOOTLOADER = 0xFF
    GET_DEBUG_DATA = 0x20


class CommandFormat(Enum):
    QUICK = "quick"
    WRITE_7BIT = "7-bit write"
    WRITE_32BIT = "32-bit write"
    BLOCK_READ = "block read"
    SET_SETTING = "set setting"  # USB only


COMMAND_FORMATS: dict[TicCommand, CommandFormat] = {
    TicCommand.SET_TARGET_POSITION: CommandFormat.WRITE_32BIT,
    TicCommand.SET_TARGET_VELOCITY: CommandFormat.WRITE_32BIT,
    TicCommand.HALT_AND_SET_POSITION: CommandFormat.WRITE_32BIT,
    TicCommand.HALT_AND_HOLD: CommandFormat.QUICK,
    TicCommand.GO_HOME: CommandFormat.WRITE_7BIT,
    TicCommand.RESET_COMMAND_TIMEOUT: CommandFormat.QUICK,
    TicCommand.DEENERGIZE: CommandFormat.QUICK,
    TicCommand.ENERGIZE: CommandFormat.QUICK,
    TicCommand.EXIT_SAFE_START: CommandFormat.QUICK,
    TicCommand.ENTER_SAFE_START: CommandFormat.QUICK,
    TicCommand.RESET: CommandFormat.QUICK,
    TicCommand.CLEAR_DRIVER_ERROR: CommandFormat.QUICK,
    TicCommand.SET_MAX_SPEED: CommandFormat.WRITE_32BIT,
    TicCommand.SET_STARTING_SPEED: CommandFormat.WRITE_32BIT,
    TicCommand.SET_MAX_ACCEL: CommandFormat.WRITE_32BIT,
    TicCommand.SET_MAX_DECEL: CommandFormat.WRITE_32BIT,
    TicCommand.SET_STEP_MODE: CommandFormat.WRITE_7BIT,
    TicCommand.SET_CURRENT_LIMIT: CommandFormat.WRITE_7BIT,
    TicCommand.SET_DECAY_MODE: CommandFormat.WRITE_7BIT,
    TicCommand.SET_AGC_OPTION: CommandFormat.WRITE_7BIT,
    TicCommand.GET_VARIABLE: CommandFormat.BLOCK_READ,
    TicCommand.GET_VARIABLE_AND_CLEAR_ERRORS_OCCURRED: CommandFormat.BLOCK_READ,
    TicCommand.GET_SETTING: CommandFormat.BLOCK_READ,
    TicCommand.SET_SETTING: CommandFormat.SET_SETTING,
    TicCommand.REINITIALIZE: CommandFormat.QUICK,
}
"""The commands this codec encodes (the bootloader and debug requests are left out)."""

USB_ONLY_COMMANDS = frozenset({TicCommand.SET_SETTING, TicCommand.REINITIALIZE})

COMMAND_TIMEOUT_RESETTERS = frozenset(
    {
        TicCommand.SET_TARGET_POSITION,
        TicCommand.SET_TARGET_VELOCITY,
        TicCommand.HALT_AND_SET_POSITION,
        TicCommand.HALT_AND_HOLD,
        TicCommand.ENERGIZE,
        TicCommand.EXIT_SAFE_START,
        TicCommand.RESET,
        TicCommand.RESET_COMMAND_TIMEOUT,
    }
)
"""The commands that restart the command timeout and clear its error (user's guide, 5.4)."""


class OperationState(IntEnum):
    RESET = 0
    DEENERGIZED = 2
    SOFT_ERROR = 4
    WAITING_FOR_ERR_LINE = 6
    STARTING_UP = 8
    NORMAL = 10


class MiscFlags(IntFlag):
    ENERGIZED = 1 << 0
    POSITION_UNCERTAIN = 1 << 1
    FORWARD_LIMIT_ACTIVE = 1 << 2
    REVERSE_LIMIT_ACTIVE = 1 << 3
    HOMING_ACTIVE = 1 << 4


class TicErrors(IntFlag):
    """Bits of "error status" (bits 0..8) and "errors occurred" (also 16..20)."""

    INTENTIONALLY_DEENERGIZED = 1 << 0
    MOTOR_DRIVER_ERROR = 1 << 1
    LOW_VIN = 1 << 2
    KILL_SWITCH = 1 << 3
    REQUIRED_INPUT_INVALID = 1 << 4
    SERIAL_ERROR = 1 << 5
    COMMAND_TIMEOUT = 1 << 6
    SAFE_START_VIOLATION = 1 << 7
    ERR_LINE_HIGH = 1 << 8
    SERIAL_FRAMING = 1 << 16
    SERIAL_RX_OVERRUN = 1 << 17
    SERIAL_FORMAT = 1 << 18
    SERIAL_CRC = 1 << 19
    ENCODER_SKIP = 1 << 20


class PlanningMode(IntEnum):
    OFF = 0
    TARGET_POSITION = 1
    TARGET_VELOCITY = 2


class SoftErrorResponse(IntEnum):
    DEENERGIZE = 0
    HALT_AND_HOLD = 1
    DECEL_TO_HOLD = 2
    GO_TO_POSITION = 3


class HomeDirection(IntEnum):
    REVERSE = 0
    FORWARD = 1


class StepMode(IntEnum):
    FULL = 0
    HALF = 1
    MICROSTEP4 = 2
    MICROSTEP8 = 3
    MICROSTEP16 = 4
    MICROSTEP32 = 5
    MICROSTEP2_100P = 6
    MICROSTEP64 = 7
    MICROSTEP128 = 8
    MICROSTEP256 = 9


class ControlMode(IntEnum):
    SERIAL = 0  # "Serial / I2C / USB": the only mode in which the host commands the motor
    STEP_DIR = 1
    RC_POSITION = 2
    RC_SPEED = 3
    ANALOG_POSITION = 4
    ANALOG_SPEED = 5
    ENCODER_POSITION = 6
    ENCODER_SPEED = 7


SPEED_UNITS_PER_HZ = 10_000
"""Velocity unit: microsteps per 10,000 s."""
ACCEL_UNITS_PER_HZ2 = 100
"""Acceleration unit: microsteps per 100 s^2."""
MAX_SPEED = 500_000_000
MIN_ACCEL = 100
MAX_ACCEL = 0x7FFF_FFFF
MAX_COMMAND_TIMEOUT_MS = 60_000
DEFAULT_COMMAND_TIMEOUT_MS = 1000
CURRENT_LIMIT_UNITS_MA = {
    TicProduct.T825: 32,
    TicProduct.T834: 32,
    TicProduct.N825: 32,
    TicProduct.T249: 40,
}
"""mA per current-limit code, for the products whose code is linear (T500 and 36v4 use tables)."""
MAX_CURRENT_MA = {
    TicProduct.T825: 3968,
    TicProduct.N825: 3968,
    TicProduct.T834: 3456,
    TicProduct.T249: 4480,
}

USB_MAX_READ = 128
SERIAL_MAX_READ = 15
USB_REQUEST_OUT = 0x40  # vendor, device, host to device
USB_REQUEST_IN = 0xC0  # vendor, device, device to host
USB_TIMEOUT_MS = 300
"""libpololu's control-transfer timeout."""
POLOLU_PROTOCOL_START = 0xAA
DEFAULT_DEVICE_NUMBER = 14
CRC7_POLYNOMIAL = 0x91


class TicProtocolError(ValueError):
    """Bytes or a request that are not a valid Tic exchange; `data` holds what was refused."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message if not data else f"{message}: {data.hex(' ')}")
        self.data = data


# --- variables and settings -----------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One variable or setting: where it is and how it is packed (little-endian)."""

    name: str
    offset: int
    fmt: str  # struct format without the byte order

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.fmt)

    def unpack(self, block: bytes, block_offset: int = 0) -> int:
        start = self.offset - block_offset
        if start < 0 or start + self.size > len(block):
            raise TicProtocolError(
                f"{self.name} (offset {self.offset:#04x}, {self.size} bytes) is not in a block of "
                f"{len(block)} bytes from offset {block_offset:#04x}"
            )
        value: int = struct.unpack_from("<" + self.fmt, block, start)[0]
        return value

    def pack_into(self, memory: bytearray, value: int) -> None:
        struct.pack_into("<" + self.fmt, memory, self.offset, value)


class Var:
    """Variables (get variable, 0xA1), offsets from tic_protocol.h, types from tic_variables.c."""

    OPERATION_STATE = Field("operation state", 0x00, "B")
    MISC_FLAGS1 = Field("misc flags 1", 0x01, "B")
    ERROR_STATUS = Field("error status", 0x02, "H")
    ERRORS_OCCURRED = Field("errors occurred", 0x04, "I")
    PLANNING_MODE = Field("planning mode", 0x09, "B")
    TARGET_POSITION = Field("target position", 0x0A, "i")
    TARGET_VELOCITY = Field("target velocity", 0x0E, "i")
    STARTING_SPEED = Field("starting speed", 0x12, "I")
    MAX_SPEED = Field("max speed", 0x16, "I")
    MAX_DECEL = Field("max decel", 0x1A, "I")
    MAX_ACCEL = Field("max accel", 0x1E, "I")
    CURRENT_POSITION = Field("current position", 0x22, "i")
    CURRENT_VELOCITY = Field("current velocity", 0x26, "i")
    ACTING_TARGET_POSITION = Field("acting target position", 0x2A, "i")
    TIME_SINCE_LAST_STEP = Field("time since last step", 0x2E, "I")
    DEVICE_RESET = Field("device reset", 0x32, "B")
    VIN_VOLTAGE = Field("VIN voltage", 0x33, "H")
    UP_TIME = Field("up time", 0x35, "I")
    ENCODER_POSITION = Field("encoder position", 0x39, "i")
    RC_PULSE_WIDTH = Field("RC pulse width", 0x3D, "H")
    STEP_MODE = Field("step mode", 0x49, "B")
    CURRENT_LIMIT = Field("current limit", 0x4A, "B")
    DECAY_MODE = Field("decay mode", 0x4B, "B")
    INPUT_STATE = Field("input state", 0x4C, "B")
    LAST_MOTOR_DRIVER_ERROR = Field("last motor driver error", 0x55, "B")


VARIABLES_SIZE = 0x5A
"""Bytes of the variable block up to the AGC variables (the HP driver's 0xFF is not modelled)."""


class Setting:
    """Settings (get setting 0xA8; set setting 0x13 over USB, applied by reinitialize)."""

    CONTROL_MODE = Field("control mode", 0x01, "B")
    OPTIONS_BYTE1 = Field("options byte 1", 0x02, "B")
    DISABLE_SAFE_START = Field("disable safe start", 0x03, "B")
    SERIAL_DEVICE_NUMBER_LOW = Field("serial device number", 0x07, "B")
    COMMAND_TIMEOUT = Field("command timeout", 0x09, "H")
    SERIAL_OPTIONS_BYTE = Field("serial options", 0x0B, "B")
    INVERT_MOTOR_DIRECTION = Field("invert motor direction", 0x1B, "B")
    CURRENT_LIMIT = Field("current limit", 0x40, "B")
    STEP_MODE = Field("step mode", 0x41, "B")
    DECAY_MODE = Field("decay mode", 0x42, "B")
    STARTING_SPEED = Field("starting speed", 0x43, "I")
    MAX_SPEED = Field("max speed", 0x47, "I")
    MAX_DECEL = Field("max decel", 0x4B, "I")
    MAX_ACCEL = Field("max accel", 0x4F, "I")
    SOFT_ERROR_RESPONSE = Field("soft error response", 0x53, "B")
    SOFT_ERROR_POSITION = Field("soft error position", 0x54, "i")
    ENCODER_PRESCALER = Field("encoder prescaler", 0x58, "I")
    LIMIT_SWITCH_FORWARD_MAP = Field("limit switch forward map", 0x5F, "B")
    LIMIT_SWITCH_REVERSE_MAP = Field("limit switch reverse map", 0x60, "B")
    HOMING_SPEED_TOWARDS = Field("homing speed towards", 0x61, "I")
    HOMING_SPEED_AWAY = Field("homing speed away", 0x65, "I")


SETTINGS_SIZE = 0x100


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A write (quick, 7-bit or 32-bit). `value` is checked against the command's format."""

    command: TicCommand
    value: int = 0

    def __post_init__(self) -> None:
        fmt = COMMAND_FORMATS.get(self.command)
        if fmt is CommandFormat.QUICK:
            if self.value != 0:
                raise ValueError(f"{self.command.name} takes no value, got {self.value}")
        elif fmt is CommandFormat.WRITE_7BIT:
            if not 0 <= self.value <= 0x7F:
                raise ValueError(f"{self.command.name} value = {self.value}: expected 0..127")
        elif fmt is CommandFormat.WRITE_32BIT:
            if not -(1 << 31) <= self.value < (1 << 32):
                raise ValueError(f"{self.command.name} value = {self.value}: not a 32-bit value")
        else:
            raise ValueError(f"{self.command.name} is not a write command")

    @property
    def format(self) -> CommandFormat:
        return COMMAND_FORMATS[self.command]

    @property
    def unsigned_value(self) -> int:
        return self.value & 0xFFFF_FFFF


@dataclass(frozen=True)
class BlockRead:
    """Get variable (optionally clearing errors occurred) or get setting: `length` bytes."""

    command: TicCommand
    offset: int
    length: int

    def __post_init__(self) -> None:
        if COMMAND_FORMATS.get(self.command) is not CommandFormat.BLOCK_READ:
            raise ValueError(f"{self.command.name} is not a block read")
        if not 0 <= self.offset <= 0xFF:
            raise ValueError(f"block read offset = {self.offset}: expected 0..255")
        if not 1 <= self.length <= USB_MAX_READ:
            raise ValueError(f"block read length = {self.length}: expected 1..{USB_MAX_READ}")


@dataclass(frozen=True)
class SetSetting:
    """Write one byte of the settings (USB only; the Tic applies settings on reinitialize)."""

    offset: int
    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.offset <= 0xFF or not 0 <= self.value <= 0xFF:
            raise ValueError(f"set setting {self.offset}={self.value}: expected bytes")


Request = Command | BlockRead | SetSetting


def set_target_position(position_usteps: int) -> Command:
    return Command(TicCommand.SET_TARGET_POSITION, position_usteps)


def set_target_velocity(velocity_usteps_per_10ks: int) -> Command:
    return Command(TicCommand.SET_TARGET_VELOCITY, velocity_usteps_per_10ks)


def halt_and_set_position(position_usteps: int) -> Command:
    return Command(TicCommand.HALT_AND_SET_POSITION, position_usteps)


def quick(command: TicCommand) -> Command:
    return Command(command)


def go_home(direction: HomeDirection) -> Command:
    return Command(TicCommand.GO_HOME, int(direction))


def set_max_speed(speed_usteps_per_10ks: int) -> Command:
    _check_range("max speed", speed_usteps_per_10ks, 0, MAX_SPEED)
    return Command(TicCommand.SET_MAX_SPEED, speed_usteps_per_10ks)


def set_starting_speed(speed_usteps_per_10ks: int) -> Command:
    _check_range("starting speed", speed_usteps_per_10ks, 0, MAX_SPEED)
    return Command(TicCommand.SET_STARTING_SPEED, speed_usteps_per_10ks)


def set_max_accel(accel_usteps_per_100s2: int) -> Command:
    _check_range("max accel", accel_usteps_per_100s2, MIN_ACCEL, MAX_ACCEL)
    return Command(TicCommand.SET_MAX_ACCEL, accel_usteps_per_100s2)


def set_max_decel(decel_usteps_per_100s2: int) -> Command:
    """0 means "the same as max accel" (the Tic's convention)."""
    if decel_usteps_per_100s2 != 0:
        _check_range("max decel", decel_usteps_per_100s2, MIN_ACCEL, MAX_ACCEL)
    return Command(TicCommand.SET_MAX_DECEL, decel_usteps_per_100s2)


def set_step_mode(mode: StepMode) -> Command:
    return Command(TicCommand.SET_STEP_MODE, int(mode))


def set_current_limit_code(code: int) -> Command:
    return Command(TicCommand.SET_CURRENT_LIMIT, code)


def current_limit_code(product: TicProduct, current_ma: int) -> int:
    """The code for `current_ma` on a product with a linear code (rounded down, as libpololu)."""
    units = CURRENT_LIMIT_UNITS_MA.get(product)
    if units is None:
        raise ValueError(
            f"current limit for {product.name}: its code is a table, give the code instead"
        )
    _check_range(f"{product.name} current limit (mA)", current_ma, 0, MAX_CURRENT_MA[product])
    return current_ma // units


def get_variables(offset: int, length: int, *, clear_errors_occurred: bool = False) -> BlockRead:
    command = (
        TicCommand.GET_VARIABLE_AND_CLEAR_ERRORS_OCCURRED
        if clear_errors_occurred
        else TicCommand.GET_VARIABLE
    )
    return BlockRead(command, offset, length)


def get_settings(offset: int, length: int) -> BlockRead:
    return BlockRead(TicCommand.GET_SETTING, offset, length)


def set_setting_bytes(field: Field, value: int) -> list[SetSetting]:
    """The set-setting requests that write `value` into `field`, one per byte."""
    packed = struct.pack("<" + field.fmt, value)
    return [SetSetting(field.offset + i, byte) for i, byte in enumerate(packed)]


def split_read(read: BlockRead, max_length: int) -> list[BlockRead]:
    """`read` as reads of at most `max_length` bytes (serial block reads are 1..15 bytes)."""
    parts = []
    for start in range(read.offset, read.offset + read.length, max_length):
        end = min(start + max_length, read.offset + read.length)
        parts.append(BlockRead(read.command, start, end - start))
    return parts


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} = {value}: expected {low}..{high}")


# --- USB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlTransfer:
    """The parameters of one control transfer, in pyusb's `ctrl_transfer` order.

    `data_or_length` is the wLength of an IN request, or the (empty) data of an OUT request.
    """

    bm_request_type: int
    b_request: int
    w_value: int
    w_index: int
    data_or_length: int | bytes


def encode_usb(request: Request) -> ControlTransfer:
    if isinstance(request, BlockRead):
        return ControlTransfer(USB_REQUEST_IN, request.command, 0, request.offset, request.length)
    if isinstance(request, SetSetting):
        return ControlTransfer(
            USB_REQUEST_OUT, TicCommand.SET_SETTING, request.value, request.offset, b""
        )
    value = request.unsigned_value
    if request.format is CommandFormat.WRITE_32BIT:
        return ControlTransfer(USB_REQUEST_OUT, request.command, value & 0xFFFF, value >> 16, b"")
    return ControlTransfer(USB_REQUEST_OUT, request.command, value, 0, b"")


def decode_usb(
    bm_request_type: int, b_request: int, w_value: int, w_index: int, w_length: int
) -> Request:
    """The device's side: the request a control transfer carries; `TicProtocolError` if none."""
    setup = struct.pack("<BBHHH", bm_request_type, b_request, w_value, w_index, w_length)
    try:
        command = TicCommand(b_request)
    except ValueError:
        raise TicProtocolError("unknown Tic request", setup) from None
    fmt = COMMAND_FORMATS.get(command)
    expected_type = USB_REQUEST_IN if fmt is CommandFormat.BLOCK_READ else USB_REQUEST_OUT
    if fmt is None or bm_request_type != expected_type:
        raise TicProtocolError(f"{command.name} is not valid as this request type", setup)
    try:
        if fmt is CommandFormat.BLOCK_READ:
            return BlockRead(command, w_index, w_length)
        if fmt is CommandFormat.SET_SETTING:
            return SetSetting(w_index, w_value)
        if fmt is CommandFormat.WRITE_32BIT:
            raw = w_value | w_index << 16
            return Command(command, raw - (1 << 32) if raw & 0x8000_0000 else raw)
        if w_index != 0:
            raise TicProtocolError(f"{command.name} with wIndex {w_index}", setup)
        return Command(command, w_value)
    except ValueError as exc:
        if isinstance(exc, TicProtocolError):
            raise
        raise TicProtocolError(str(exc), setup) from None


# --- TTL serial -----------------------------------------------------------------------------


def crc7(data: bytes) -> int:
    """The Tic's CRC-7 (polynomial 0x91 reflected, initial value 0), user's guide section 9."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc ^ CRC7_POLYNOMIAL) >> 1 if crc & 1 else crc >> 1
    return crc


def encode_serial(
    request: Command | BlockRead, *, device_number: int | None = None, crc: bool = False
) -> bytes:
    """The bytes of `request`: compact protocol, or the Pololu protocol with `device_number`."""
    if isinstance(request, BlockRead):
        if request.length > SERIAL_MAX_READ:
            raise ValueError(
                f"serial block read length = {request.length}: expected 1..{SERIAL_MAX_READ}"
            )
        if request.offset > 0x7F:
            raise ValueError(f"serial block read offset = {request.offset}: expected 0..127")
        data = bytes((request.offset, request.length))
    elif request.command in USB_ONLY_COMMANDS:
        raise ValueError(f"{request.command.name} is a USB-only command")
    elif request.format is CommandFormat.WRITE_32BIT:
        value = request.unsigned_value
        low_bytes = value.to_bytes(4, "little")
        msbs = sum(((byte >> 7) & 1) << i for i, byte in enumerate(low_bytes))
        data = bytes((msbs, *(byte & 0x7F for byte in low_bytes)))
    elif request.format is CommandFormat.WRITE_7BIT:
        data = bytes((request.value,))
    else:
        data = b""
    if device_number is None:
        packet = bytes((request.command,)) + data
    else:
        if not 0 <= device_number <= 0x7F:
            raise ValueError(f"device number = {device_number}: expected 0..127")
        packet = bytes((POLOLU_PROTOCOL_START, device_number, request.command & 0x7F)) + data
    return packet + bytes((crc7(packet),)) if crc else packet


def serial_reply_length(request: Command | BlockRead) -> int:
    """How many bytes the Tic sends back for `request` over serial."""
    return request.length if isinstance(request, BlockRead) else 0


class TicSerialDecoder:
    """The Tic's side of the serial line: bytes in, requests out (for the emulator and tests).

    A command byte (top bit set) starts a packet, data bytes (top bit clear) complete it. A new
    command byte before the packet is complete is a format error (the partial packet is
    dropped), as is a data byte outside a packet; with `crc`, a packet whose CRC byte is wrong is
    a CRC error. Pololu-protocol packets for another device number are skipped silently.
    `errors` collects the error bits each problem raises on the Tic.
    """

    def __init__(self, *, device_number: int = DEFAULT_DEVICE_NUMBER, crc: bool = False) -> None:
        self.device_number = device_number
        self.crc = crc
        self.errors = TicErrors(0)
        self._packet = bytearray()

    def feed(self, data: bytes) -> list[Command | BlockRead]:
        out: list[Command | BlockRead] = []
        for byte in data:
            if byte & 0x80:
                if self._packet:
                    self.errors |= TicErrors.SERIAL_FORMAT | TicErrors.SERIAL_ERROR
                self._packet = bytearray((byte,))
            elif not self._packet:
                self.errors |= TicErrors.SERIAL_FORMAT | TicErrors.SERIAL_ERROR
                continue
            else:
                self._packet.append(byte)
            request = self._complete()
            if request is not None:
                out.append(request)
        return out

    def _complete(self) -> Command | BlockRead | None:
        packet = bytes(self._packet)
        pololu = packet[0] == POLOLU_PROTOCOL_START
        header = 3 if pololu else 1
        if len(packet) < header:
            return None
        command_byte = packet[2] | 0x80 if pololu else packet[0]
        try:
            command = TicCommand(command_byte)
            fmt = COMMAND_FORMATS[command]
        except (ValueError, KeyError):
            self._packet.clear()
            self.errors |= TicErrors.SERIAL_FORMAT | TicErrors.SERIAL_ERROR
            return None
        data_length = {
            CommandFormat.QUICK: 0,
            CommandFormat.WRITE_7BIT: 1,
            CommandFormat.WRITE_32BIT: 5,
            CommandFormat.BLOCK_READ: 2,
            CommandFormat.SET_SETTING: 0,
        }[fmt]
        total = header + data_length + (1 if self.crc else 0)
        if len(packet) < total:
            return None
        self._packet.clear()
        if self.crc and crc7(packet[:-1]) != packet[-1]:
            self.errors |= TicErrors.SERIAL_CRC | TicErrors.SERIAL_ERROR
            return None
        if pololu and packet[1] != self.device_number:
            return None
        if command in USB_ONLY_COMMANDS:
            self.errors |= TicErrors.SERIAL_FORMAT | TicErrors.SERIAL_ERROR
            return None
        data = packet[header : header + data_length]
        if fmt is CommandFormat.BLOCK_READ:
            if not 1 <= data[1] <= SERIAL_MAX_READ:
                self.errors |= TicErrors.SERIAL_FORMAT | TicErrors.SERIAL_ERROR
                return None
            return BlockRead(command, data[0], data[1])
        if fmt is CommandFormat.WRITE_32BIT:
            raw = sum(((data[1 + i] | ((data[0] >> i) & 1) << 7) << (8 * i)) for i in range(4))
            return Command(command, raw - (1 << 32) if raw & 0x8000_0000 else raw)
        if fmt is CommandFormat.WRITE_7BIT:
            return Command(command, data[0])
        return Command(command)


# --- status ---------------------------------------------------------------------------------

STATUS_READ_LENGTH = Var.INPUT_STATE.offset + 1
"""Variables 0x00..0x4C: everything `TicStatus` holds, in one USB read (six serial reads)."""


@dataclass(frozen=True)
class TicStatus:
    """The variables a host watches, decoded from a block read from offset 0."""

    operation_state: OperationState
    misc_flags: MiscFlags
    errors: TicErrors
    errors_occurred: TicErrors
    planning_mode: PlanningMode
    target_position_usteps: int
    target_velocity_usteps_per_10ks: int
    starting_speed_usteps_per_10ks: int
    max_speed_usteps_per_10ks: int
    max_decel_usteps_per_100s2: int
    max_accel_usteps_per_100s2: int
    position_usteps: int
    velocity_usteps_per_10ks: int
    acting_target_position_usteps: int
    vin_mv: int
    up_time_ms: int
    encoder_position: int
    step_mode: int
    current_limit_code: int

    @property
    def energized(self) -> bool:
        return MiscFlags.ENERGIZED in self.misc_flags

    @property
    def position_uncertain(self) -> bool:
        return MiscFlags.POSITION_UNCERTAIN in self.misc_flags

    @property
    def homing(self) -> bool:
        return MiscFlags.HOMING_ACTIVE in self.misc_flags

    @classmethod
    def decode(cls, block: bytes) -> TicStatus:
        if len(block) < STATUS_READ_LENGTH:
            raise TicProtocolError(
                f"status block of {len(block)} bytes: expected {STATUS_READ_LENGTH}", block
            )
        try:
            state = OperationState(Var.OPERATION_STATE.unpack(block))
            planning = PlanningMode(Var.PLANNING_MODE.unpack(block))
        except ValueError as exc:
            raise TicProtocolError(f"status block: {exc}", block) from None
        return cls(
            operation_state=state,
            misc_flags=MiscFlags(Var.MISC_FLAGS1.unpack(block) & 0x1F),
            errors=TicErrors(Var.ERROR_STATUS.unpack(block)),
            errors_occurred=TicErrors(Var.ERRORS_OCCURRED.unpack(block) & 0x1F_01FF),
            planning_mode=planning,
            target_position_usteps=Var.TARGET_POSITION.unpack(block),
            target_velocity_usteps_per_10ks=Var.TARGET_VELOCITY.unpack(block),
            starting_speed_usteps_per_10ks=Var.STARTING_SPEED.unpack(block),
            max_speed_usteps_per_10ks=Var.MAX_SPEED.unpack(block),
            max_decel_usteps_per_100s2=Var.MAX_DECEL.unpack(block),
            max_accel_usteps_per_100s2=Var.MAX_ACCEL.unpack(block),
            position_usteps=Var.CURRENT_POSITION.unpack(block),
            velocity_usteps_per_10ks=Var.CURRENT_VELOCITY.unpack(block),
            acting_target_position_usteps=Var.ACTING_TARGET_POSITION.unpack(block),
            vin_mv=Var.VIN_VOLTAGE.unpack(block),
            up_time_ms=Var.UP_TIME.unpack(block),
            encoder_position=Var.ENCODER_POSITION.unpack(block),
            step_mode=Var.STEP_MODE.unpack(block),
            current_limit_code=Var.CURRENT_LIMIT.unpack(block),
        )
