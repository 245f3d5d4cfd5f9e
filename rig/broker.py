"""A private Mosquitto for the simulator profile and the tests, on a free loopback port.

A real rig connects to the site's broker (TLS, per-user passwords, ACLs); the simulator brings
its own so that nothing on the machine has to be configured first.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType

from drivers.transport.mqtt import MAX_PACKET_BYTES
from rig.children import die_with_this_process

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


class BrokerError(RuntimeError):
    pass


def find_mosquitto() -> str:
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise BrokerError("mosquitto not found: install it (Debian: apt-get install mosquitto)")


def find_mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd")
    if found is None:
        raise BrokerError("mosquitto_passwd not found: it comes with Debian's mosquitto package")
    return found


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateBroker:
    """Start with `await start()` (or `async with`); `port` is where it listens."""

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        *,
        credentials: dict[str, str] | None = None,
        acl: str | None = None,
    ) -> None:
        """With `credentials` (user -> password) and an `acl`, the broker refuses anonymous
        clients and holds every user to its ACL; without them it is open (tests of one piece)."""
        self.run_dir = run_dir
        self.host = "127.0.0.1"
        self.port = port or free_loopback_port()
        self._credentials = credentials
        self._acl = acl
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """Mosquitto's process (benchmarks measure its CPU), while it runs."""
        return None if self._process is None else self._process.pid

    async def start(self, timeout_s: float = 5.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\n"
            # Started as root, mosquitto would drop to its own user and lose access to this
            # private run directory and its 0600 password file; stay whoever started it.
            + f"user {getpass.getuser()}\n"
            + await self._access_lines()
            # Mosquitto 2 disconnects a client that sends a larger packet, reading only its
            # header (message_size_limit, which would drop instead, is deprecated in 2.0), and
            # never sends a larger one. It has no per-topic way to refuse retained messages
            # (retain_available is all or nothing, and the daemon's state is retained): the
            # responders refuse retained requests instead (drivers/transport/mqtt.py).
            + f"max_packet_size {MAX_PACKET_BYTES}\n"
            # Without it Mosquitto's sockets keep Nagle's algorithm: a small message waits for
            # the subscriber's (delayed) ACK of the one before (docs/api.md, site brokers).
            + "set_tcp_nodelay true\n"
            + "persistence false\n"
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
                preexec_fn=die_with_this_process(),
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

    async def _access_lines(self) -> str:
        if self._credentials is None:
            return "allow_anonymous true\n"
        passwd = self.run_dir / "passwd"
        passwd.unlink(missing_ok=True)
        passwd.touch(mode=0o600)
        for user, password in self._credentials.items():
            tool = await asyncio.create_subprocess_exec(
                find_mosquitto_passwd(),
                "-b",
                str(passwd),
                user,
                password,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await tool.communicate()
            if tool.returncode != 0:
                raise BrokerError(f"mosquitto_passwd failed for {user}: {err.decode().strip()}")
        acl = self.run_dir / "acl"
        acl.write_text(self._acl or "")
        return f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"

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
