"""The board's link to the host as two binary streams, polled so that the main loop never waits.

USB CDC on the RP2040 (`sys.stdin.buffer`, `sys.stdout.buffer`); a pseudo-terminal under the
unix port (firmware/hal_unix.py). Shared by both HALs.
"""

import select


class HostLink:
    def __init__(self, rx: object, tx: object) -> None:
        self._rx = rx
        self._tx = tx
        self._poll = select.poll()
        self._poll.register(rx, select.POLLIN)
        self._byte = bytearray(1)
        self._buf = bytearray(64)

    def read(self) -> bytes:
        """What the host sent since the last call, up to 64 bytes; b"" when nothing. One byte per
        poll: a stream's `readinto` may wait to fill its whole buffer."""
        n = 0
        while n < len(self._buf) and self._poll.poll(0):
            self._rx.readinto(self._byte)
            self._buf[n] = self._byte[0]
            n += 1
        return bytes(self._buf[:n])

    def write(self, frame: memoryview) -> None:
        self._tx.write(frame)
