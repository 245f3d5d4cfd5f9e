"""The Tic's TTL serial face: a pseudo-terminal whose far end is the Tic model.

Bytes from the host go through the codec's device side (`TicSerialDecoder`: compact or Pololu
protocol, optional CRC-7); each request is handled at the time its last byte arrived, and a
block read is answered with raw bytes. What the decoder finds wrong (a broken packet, a bad CRC)
raises the Tic's serial error bits, which the next command that resets the command timeout
clears, as on the Tic.

The model may also sit behind the USB face (a Tic has both); `lock` is then that device's lock,
so that the two faces never step the model at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from drivers.clock import REAL_CLOCK, Clock
from drivers.sim.pty import PtyPort
from drivers.sim.tic_device import TicModel
from drivers.tic.codec import DEFAULT_DEVICE_NUMBER, TicErrors, TicSerialDecoder


class SimTicSerial:
    def __init__(
        self,
        model: TicModel,
        *,
        link_dir: Path,
        baudrate: int = 9600,
        device_number: int = DEFAULT_DEVICE_NUMBER,
        crc: bool = False,
        clock: Clock = REAL_CLOCK,
        lock: threading.RLock | None = None,
        name: str = "tic",
    ) -> None:
        self.model = model
        self.decoder = TicSerialDecoder(device_number=device_number, crc=crc)
        self.port = PtyPort(name, baudrate, self._from_host, link_dir=link_dir, clock=clock)
        self._clock = clock
        self._lock = lock if lock is not None else threading.RLock()

    @property
    def path(self) -> Path:
        return self.port.path

    async def start(self) -> None:
        with self._lock:
            if not self.model.powered:
                self.model.power_up(self._clock.monotonic())
        await self.port.start()

    async def stop(self) -> None:
        await self.port.stop()

    def _from_host(self, data: bytes, arrival_s: float) -> None:
        with self._lock:
            requests = self.decoder.feed(data)
            if self.decoder.errors:
                self.model.inject_error(self.decoder.errors)
                self.decoder.errors = TicErrors(0)
            for request in requests:
                reply = self.model.handle(request, arrival_s)
                if reply:
                    self.port.send(reply)
