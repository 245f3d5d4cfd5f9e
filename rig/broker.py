"""A private Mosquitto for the simulator profile and the tests, on a free loopback port.

A real rig connects to the site's broker (TLS, per-user passwords, ACLs); the simulator brings
its own so that nothing on the machine has to be configured first.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


class BrokerError(RuntimeError):
    pass


def find_mosquitto() -> str:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise BrokerError("mosquitto not found: install it (Debian: apt-get install mosquitto)")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateBroker:
    """Start with `await start()` (or `async with`); `port` is where it listens."""

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.run_dir = run_dir
        self.host = "127.0.0.1"
        self.port = port or free_loopback_port()
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 5.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
        )
        with (self.run_dir / "mosquitto.log").open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                find_mosquitto(),
                "-c",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise BrokerError(
                    f"mosquitto exited with {self._process.returncode}; see {self.run_dir / 'mosquitto.log'}"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                return
            await asyncio.sleep(0.02)
        await self.stop()
        raise BrokerError(
            f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s"
        )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(3):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> PrivateBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
