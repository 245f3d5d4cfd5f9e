"""The I/O board's framing, shared by both ends of the link: frames, CRC, sequence numbers.

Part of the board's side of the protocol (docs/protocols/ioboard.md sections 2 and 3), with
`messages` and `device_codec`: the modules the board's firmware shares with the host. They import
nothing but the standard library and each other, and keep to what MicroPython has where that
costs little (issue 12 runs them on the board and compiles them with mpy-cross). What this module
still needs of CPython, for issue 12 to settle:

- `from __future__ import annotations` and the annotations themselves;
- `Deframer` drops consumed bytes with `del buf[:n]`, which MicroPython's arrays do not support.

`crc16` uses binascii.crc_hqx where it exists (CPython, in C) and the bitwise `crc16_bitwise`
where it does not (MicroPython's binascii has crc32 only); a test keeps the two equal.

Framing errors (garbage, CRC failures) are counted and skipped, never raised: a serial line
delivers noise and the stream must resynchronise by itself.
"""

from __future__ import annotations

import binascii

FRAME_MAX_BYTES = 64
FRAME_OVERHEAD_BYTES = 5
"""len, seq, CRC hi, CRC lo, sync."""
PAYLOAD_MAX_BYTES = FRAME_MAX_BYTES - FRAME_OVERHEAD_BYTES
SYNC_BYTE = 0x7E
SEQ_MARK = 0x10
SEQ_MODULO = 16

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc16_bitwise(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE one bit at a time: the board's CRC where binascii lacks crc_hqx."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


_HAVE_CRC_HQX = hasattr(binascii, "crc_hqx")


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, xorout 0 ("123456789" ->
    0x29B1). binascii.crc_hqx is exactly this register with the init passed in."""
    if _HAVE_CRC_HQX:
        return binascii.crc_hqx(data, CRC_INIT)
    return crc16_bitwise(data)


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
    frame behind it.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.invalid_bytes = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        while buf:
            length = buf[0]
            if not FRAME_OVERHEAD_BYTES <= length <= FRAME_MAX_BYTES or (
                len(buf) > 1 and buf[1] & 0xF0 != SEQ_MARK
            ):
                self._discard(1)
                continue
            if len(buf) < length:
                return None
            if buf[length - 1] != SYNC_BYTE:
                self._discard(1)
                continue
            crc = (buf[length - 3] << 8) | buf[length - 2]
            if crc16(bytes(buf[: length - 3])) != crc:
                self.crc_errors += 1
                self._discard(1)
                continue
            seq = buf[1] & 0x0F
            payload = bytes(buf[2 : length - 3])
            del buf[:length]
            return seq, payload
        return None

    def _discard(self, n: int) -> None:
        del self._buf[:n]
        self.invalid_bytes += n
