"""Scripted byte exchanges over a real pseudo-terminal (after PyMeasure's `expected_protocol`).

The driver under test opens `peer.path` like any serial port. The script is a list of
(expected bytes from the host, reply bytes to send back) pairs that must be consumed exactly and
in order: an unexpected byte, a missing exchange or a leftover byte fails the test.
"""

from __future__ import annotations

import asyncio
import os
import termios
import tty
from collections.abc import Sequence
from types import TracebackType

TURN_GRACE_S = 0.02
"""How long a turn-taking peer listens for bytes sent too early before it replies."""


class ScriptMismatchError(AssertionError):
    pass


class ScriptedPeer:
    def __init__(
        self,
        script: Sequence[tuple[bytes, bytes]],
        *,
        read_timeout_s: float = 2.0,
        turn_taking: bool = False,
    ) -> None:
        """`turn_taking`: the host must wait for each reply before it sends more bytes (a byte
        that arrives before the reply went out fails the exchange)."""
        self._script = list(script)
        self._turn_taking = turn_taking
        self._read_timeout_s = read_timeout_s
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd, termios.TCSANOW)
        os.set_blocking(self._master_fd, False)
        self.path = os.ttyname(self._slave_fd)
        self._received = bytearray()
        self._data = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def __aenter__(self) -> ScriptedPeer:
        asyncio.get_running_loop().add_reader(self._master_fd, self._read_ready)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.finished()
        finally:
            if self._task is not None and not self._task.done():
                self._task.cancel()
            asyncio.get_running_loop().remove_reader(self._master_fd)
            os.close(self._master_fd)
            os.close(self._slave_fd)

    def send(self, data: bytes) -> None:
        """Send unsolicited bytes to the host (a sample stream, an alarm)."""
        os.write(self._master_fd, data)

    async def finished(self) -> None:
        """Wait for the script to be consumed; fail on any mismatch or leftover byte."""
        assert self._task is not None
        await self._task
        await asyncio.sleep(0.05)
        if self._received:
            raise ScriptMismatchError(
                f"host sent unexpected trailing bytes {bytes(self._received)!r}"
            )

    def _read_ready(self) -> None:
        try:
            self._received += os.read(self._master_fd, 4096)
        except OSError:
            return
        self._data.set()

    async def _run(self) -> None:
        for index, (expected, reply) in enumerate(self._script):
            try:
                async with asyncio.timeout(self._read_timeout_s):
                    while len(self._received) < len(expected):
                        if bytes(self._received) != expected[: len(self._received)]:
                            break
                        self._data.clear()
                        await self._data.wait()
            except TimeoutError:
                raise ScriptMismatchError(
                    f"exchange {index}: expected {expected!r}, got only {bytes(self._received)!r}"
                ) from None
            got = bytes(self._received[: len(expected)])
            if got != expected:
                raise ScriptMismatchError(f"exchange {index}: expected {expected!r}, got {got!r}")
            del self._received[: len(expected)]
            if self._turn_taking:
                await asyncio.sleep(TURN_GRACE_S)
                if self._received:
                    raise ScriptMismatchError(
                        f"exchange {index}: the host sent {bytes(self._received)!r} before "
                        f"the reply to {expected!r}"
                    )
            if reply:
                os.write(self._master_fd, reply)
