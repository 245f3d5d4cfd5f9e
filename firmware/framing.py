"""The I/O board's framing, shared by the firmware and the host: frames, CRC, sequence numbers.

docs/protocols/ioboard.md sections 2 and 3. The host's codec (drivers/ioboard/) imports this
module; the board runs it. Both ends parse the byte stream with the same `Deframer`.

The board builds its frames in place (`finish_frame` on a preallocated buffer, `crc16_range` over
part of it): the sample path allocates nothing. The host builds them with `build_frame`.

Framing errors (garbage, CRC failures) are counted and skipped, never raised: a serial line
delivers noise and the stream must resynchronise by itself.
"""

import binascii

from firmware.ticks import TICKS_MAX

FRAME_MAX_BYTES = 64
FRAME_OVERHEAD_BYTES = 5
"""len, seq, CRC hi, CRC lo, sync."""
PAYLOAD_MAX_BYTES = FRAME_MAX_BYTES - FRAME_OVERHEAD_BYTES
PAYLOAD_OFFSET = 2
"""A payload starts after len and seq."""
SYNC_BYTE = 0x7E
SEQ_MARK = 0x10
SEQ_MODULO = 16

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021

T_US_MODULO = TICKS_MAX + 1
"""Board timestamps on the wire are tick values: they wrap at 2^30 us."""


def crc16_bitwise(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE one bit at a time: the specification, and the source of the table."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _crc_table() -> list[int]:
    # Entry i is the register after shifting byte i through a zero register.
    return [crc16_bitwise(bytes((i,)), 0) for i in range(256)]


_CRC_TABLE = _crc_table()
_HAVE_CRC_HQX = hasattr(binascii, "crc_hqx")  # CPython: in C; MicroPython has crc32 only


def crc16_range(buf: bytes | bytearray | memoryview, start: int, end: int) -> int:
    """CRC-16 of `buf[start:end]`, a byte at a time from a table, without slicing (no allocation:
    the board runs this for every sample frame)."""
    crc = CRC_INIT
    table = _CRC_TABLE
    for i in range(start, end):
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ buf[i]]
    return crc


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, xorout 0 ("123456789" ->
    0x29B1). binascii.crc_hqx is exactly this register with the init passed in."""
    if _HAVE_CRC_HQX:
        return binascii.crc_hqx(data, CRC_INIT)  # type: ignore[attr-defined,unused-ignore]
    return crc16_range(data, 0, len(data))


def finish_frame(buf: bytearray, seq: int, payload_len: int) -> int:
    """Complete a frame whose payload is already at `buf[PAYLOAD_OFFSET:]`: write len, seq, CRC
    and sync in place; return the frame's length. `buf` must hold FRAME_MAX_BYTES."""
    length = payload_len + FRAME_OVERHEAD_BYTES
    buf[0] = length
    buf[1] = SEQ_MARK | seq
    crc = crc16_range(buf, 0, length - 3)
    buf[length - 3] = crc >> 8
    buf[length - 2] = crc & 0xFF
    buf[length - 1] = SYNC_BYTE
    return length


def build_frame(seq: int, payload: bytes) -> bytes:
    if not 0 <= seq < SEQ_MODULO:
        raise ValueError(f"seq = {seq}: expected 0..15")
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise ValueError(
            f"payload of {len(payload)} bytes: at most {PAYLOAD_MAX_BYTES} fit a frame"
        )
    head = bytes((len(payload) + FRAME_OVERHEAD_BYTES, SEQ_MARK | seq)) + payload
    crc = crc16(head)
    return head + bytes((crc >> 8, crc & 0xFF, SYNC_BYTE))


class Deframer:
    """Cuts a byte stream into (seq, payload) frames, resynchronising after garbage.

    At each position it tries to read a frame: a plausible len (5..64), a seq byte with the 0x10
    marker, the sync byte where len says the frame ends, and a matching CRC. Anything else drops
    one byte and tries again at the next position, so a corrupted len byte cannot swallow the good
    frame behind it. Consumed bytes are skipped by an index and cut off once per `feed`
    (MicroPython's bytearray has no `del buf[:n]`).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.invalid_bytes = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            self._buf = self._buf[self._pos :]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        end = len(buf)
        while self._pos < end:
            pos = self._pos
            length = buf[pos]
            if not FRAME_OVERHEAD_BYTES <= length <= FRAME_MAX_BYTES or (
                pos + 1 < end and buf[pos + 1] & 0xF0 != SEQ_MARK
            ):
                self._discard()
                continue
            if end - pos < length:
                return None
            last = pos + length - 1
            if buf[last] != SYNC_BYTE:
                self._discard()
                continue
            if crc16_range(buf, pos, last - 2) != (buf[last - 2] << 8) | buf[last - 1]:
                self.crc_errors += 1
                self._discard()
                continue
            self._pos = pos + length
            return buf[pos + 1] & 0x0F, bytes(buf[pos + PAYLOAD_OFFSET : last - 2])
        return None

    def _discard(self) -> None:
        self._pos += 1
        self.invalid_bytes += 1
