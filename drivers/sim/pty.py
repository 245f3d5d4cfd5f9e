"""The far end of a serial cable: a pseudo-terminal an emulator listens on.

The host opens the pty's slave side exactly as it would open /dev/ttyUSB0; the emulator owns the
master side. A pty moves bytes instantly, so this end paces them: bytes the emulator sends are
released no faster than the configured baud rate allows, and received bytes are handed on at the
time their last bit would have arrived. Link faults (latency, dropped or corrupted bytes, a
silent device, an unplugged cable) are injected here, below the device model, so the model and
the host see exactly what a bad cable would show them.

An unplugged cable closes the master, which the host sees as a hang-up (EIO) on its next read.
Plugging it back creates a fresh pty behind the same stable symlink, as udev's
/dev/serial/by-id links do for a re-enumerated USB device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.clock import REAL_CLOCK, Clock
from drivers.transport.serial import wire_time_s
from drivers.transport.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass
class LinkFaults:
    """Faults to inject on one link; all off by default."""

    latency_s: float = 0.0
    drop_probability: float = 0.0
    corrupt_probability: float = 0.0
    silent: bool = False
    """The device hears nothing and says nothing (a hung device on a live cable)."""


class PtyPort:
    """One emulated serial port.

    `on_bytes(data, arrival_s)` is called with bytes from the host, after pacing and faults;
    `send(data)` queues bytes towards the host.
    """

    def __init__(
        self,
        name: str,
        baudrate: int,
        on_bytes: Callable[[bytes, float], None],
        *,
        link_dir: Path,
        clock: Clock = REAL_CLOCK,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.baudrate = baudrate
        self.faults = LinkFaults()
        self._on_bytes = on_bytes
        self._clock = clock
        self._rng = random.Random(seed)
        self.path = link_dir / name
        self._master_fd: int | None = None
        self._slave_fd: int | None = None
        self._tx_queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._tx_task: asyncio.Task[None] | None = None
        self._rx_busy_until_s = 0.0
        self.bytes_from_host = 0
        self.bytes_to_host = 0

    @property
    def plugged(self) -> bool:
        return self._master_fd is not None

    async def start(self) -> None:
        self.plug()
        self._tx_task = asyncio.create_task(self._tx_loop(), name=f"pty-tx-{self.name}")

    async def stop(self) -> None:
        await cancel_and_wait(self._tx_task)
        self._tx_task = None
        self.unplug()

    def plug(self) -> None:
        if self._master_fd is not None:
            return
        master_fd, slave_fd = os.openpty()
        tty.setraw(slave_fd, termios.TCSANOW)
        os.set_blocking(master_fd, False)
        # The slave stays open here too: without it, the master reads EIO whenever the host
        # closes its side between reconnects, which is not what a plugged cable does.
        self._master_fd, self._slave_fd = master_fd, slave_fd
        tmp = self.path.with_suffix(".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave_fd), tmp)
        os.replace(tmp, self.path)
        asyncio.get_running_loop().add_reader(master_fd, self._read_ready)
        log.info("%s plugged at %s -> %s", self.name, self.path, os.ttyname(slave_fd))

    def unplug(self) -> None:
        """Pull the cable: the host's next read fails, bytes in flight are lost, and the
        device's path goes, as udev removes a USB serial port's link. Left in place, the link
        would lead a host reconnecting meanwhile to whatever pseudo-terminal next takes the freed
        /dev/pts number: another simulator's device, whose replies it would then steal."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._master_fd is None:
            return
        asyncio.get_running_loop().remove_reader(self._master_fd)
        os.close(self._master_fd)
        if self._slave_fd is not None:
            os.close(self._slave_fd)
        self._master_fd = self._slave_fd = None
        while not self._tx_queue.empty():
            self._tx_queue.get_nowait()
        log.info("%s unplugged", self.name)

    def send(self, data: bytes) -> None:
        if data and self._master_fd is not None and not self.faults.silent:
            self._tx_queue.put_nowait(self._apply_faults(data))

    def _apply_faults(self, data: bytes) -> bytes:
        faults = self.faults
        if faults.drop_probability == 0.0 and faults.corrupt_probability == 0.0:
            return data
        out = bytearray()
        for byte in data:
            if self._rng.random() < faults.drop_probability:
                continue
            if self._rng.random() < faults.corrupt_probability:
                byte ^= 1 << self._rng.randrange(8)
            out.append(byte)
        return bytes(out)

    def _read_ready(self) -> None:
        assert self._master_fd is not None
        try:
            data = os.read(self._master_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            # EIO: nobody has the slave open. The cable is still plugged; wait for the host.
            return
        if not data:
            return
        self.bytes_from_host += len(data)
        if self.faults.silent:
            return
        data = self._apply_faults(data)
        now_s = self._clock.monotonic()
        start_s = max(now_s, self._rx_busy_until_s)
        self._rx_busy_until_s = start_s + wire_time_s(len(data), self.baudrate)
        arrival_s = self._rx_busy_until_s + self.faults.latency_s
        delay_s = arrival_s - now_s
        if delay_s <= 0.0005:
            self._on_bytes(data, arrival_s)
        else:
            asyncio.get_running_loop().call_later(delay_s, self._deliver, data, arrival_s)

    def _deliver(self, data: bytes, arrival_s: float) -> None:
        if self._master_fd is not None:
            self._on_bytes(data, arrival_s)

    async def _tx_loop(self) -> None:
        """Release queued bytes to the host no faster than the baud rate."""
        while True:
            data = await self._tx_queue.get()
            if self.faults.latency_s > 0:
                await asyncio.sleep(self.faults.latency_s)
            done_at_s = self._clock.monotonic() + wire_time_s(len(data), self.baudrate)
            await self._write_all(data)
            remaining_s = done_at_s - self._clock.monotonic()
            if remaining_s > 0.0005:
                await asyncio.sleep(remaining_s)

    async def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._master_fd is not None:
            try:
                written = os.write(self._master_fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            except OSError as exc:
                log.debug("%s: write to host failed: %s", self.name, exc)
                return
            self.bytes_to_host += written
            view = view[written:]
