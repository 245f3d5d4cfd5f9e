"""The I/O board's port for `rig firmware`: asking it IDENTIFY, and refusing a port in use.

IDENTIFY goes through the daemon's own board driver (`drivers.ioboard.driver.IoBoard`) and
codec: no second implementation of the protocol. It is safe beside a rig because the port
cannot be shared: the driver opens it with an exclusive lock (pyserial's `exclusive=True`, an
flock), as the daemon's driver and mpremote do, so while a daemon holds the board this refuses
before a byte is sent, and the daemon's link is untouched. Without a daemon, IDENTIFY and the
GET_STATUS the connection reads move nothing and do not feed the board's heartbeat watchdog
(only HEARTBEAT and CONFIG_WATCHDOG do), so a board left armed by a stopped daemon stays tripped.
"""

from __future__ import annotations

import asyncio
import os

from drivers.ioboard.codec import BoardIdent
from drivers.ioboard.driver import BoardTimeoutError, IoBoard
from drivers.transport.serial import LinkClosedError


class BoardPortError(RuntimeError):
    """The port cannot be used, or what is on it is not the board: the message says which."""


def check_present(port: str) -> None:
    if not os.path.exists(port):
        raise BoardPortError(
            f"{port}: no such device (is the board plugged in? `rig devices` lists the ports)"
        )


def busy_message(port: str) -> str:
    return (
        f"{port} is in use by another program (a running rig holds its board's port): stop the "
        "rig first; the board cannot be read or flashed while the daemon drives it"
    )


async def read_ident(port: str, baudrate: int, timeout_s: float = 2.0) -> BoardIdent:
    """The board's IDENTIFY answer (protocol and firmware versions, serial number)."""
    check_present(port)
    board = IoBoard(port, baudrate=baudrate, command_timeout_s=timeout_s)
    try:
        return await board.connect(timeout_s)
    except LinkClosedError as exc:
        if "exclusively lock" in str(exc):
            raise BoardPortError(busy_message(port)) from None
        raise BoardPortError(f"{port}: {exc}") from None
    except (TimeoutError, BoardTimeoutError):
        raise BoardPortError(
            f"{port}: no I/O board protocol answer within {timeout_s:g} s (not the rig's board, "
            "or its firmware is not running: `rig firmware flash` installs it)"
        ) from None
    finally:
        await board.close()


def format_version(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def identify(port: str, baudrate: int, timeout_s: float = 2.0) -> BoardIdent:
    return asyncio.run(read_ident(port, baudrate, timeout_s))
