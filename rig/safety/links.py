"""The devices as the rest of the rig may hold them: their links and what they report.

The interlock holds the drivers (rig/safety/interlock.py); everything that moves or configures
an actuator is one of its methods, checked against the rule table. The daemon and the self-test
need the devices too (connect, reconnect, poll, heartbeat), so they get these handles: the same
driver, with only the calls that move nothing. Nothing outside the interlock and these two
classes names a driver's actuator method; tests/test_actuator_paths.py checks that on every
module of the rig.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.ioboard import BoardStatus, IoBoard
from drivers.ne1000 import AlarmKind, Ne1000Pump, PumpStatus
from drivers.ne1000.codec import Reply
from drivers.ne1000.driver import Dispensed
from drivers.tic.codec import TicStatus
from drivers.tic.driver import TicStepper
from drivers.transport.linkstats import LinkStats


class PumpLink:
    """The pump's link: connect, poll, read what it reported; nothing that moves it."""

    def __init__(self, pump: Ne1000Pump) -> None:
        self.__pump = pump

    @property
    def url(self) -> str:
        return self.__pump.link.url

    @property
    def stats(self) -> LinkStats:
        return self.__pump.stats

    @property
    def last_alarm(self) -> AlarmKind | None:
        return self.__pump.last_alarm

    def take_stop_reply(self) -> Reply | None:
        """The reply to the last stop written by the fault path, once (then forgotten)."""
        reply, self.__pump.last_stop_reply = self.__pump.last_stop_reply, None
        return reply

    async def connect(self) -> None:
        await self.__pump.connect()

    async def close(self) -> None:
        await self.__pump.close()

    async def wait_closed(self) -> None:
        await self.__pump.wait_closed()

    async def query(self) -> PumpStatus:
        return await self.__pump.query()

    async def dispensed(self) -> Dispensed:
        return await self.__pump.dispensed()


class BoardLink:
    """The I/O board's link: connect, status, heartbeat; nothing that switches or configures."""

    def __init__(self, board: IoBoard, *, before_connect: Callable[[], None]) -> None:
        self.__board = board
        self.__before_connect = before_connect

    @property
    def url(self) -> str:
        return self.__board.link.url

    @property
    def stats(self) -> LinkStats:
        return self.__board.stats

    async def connect(self) -> None:
        self.__before_connect()  # before the port opens: no sample of the new stream yet
        await self.__board.connect()

    async def close(self) -> None:
        await self.__board.close()

    async def wait_closed(self) -> None:
        await self.__board.link.wait_closed()

    async def status(self) -> BoardStatus:
        return await self.__board.status()

    def heartbeat_nowait(self) -> float | None:
        """Feed the board's watchdog: it proves the host alive, and moves nothing."""
        return self.__board.heartbeat_nowait()


class BasketLink:
    """The basket's Tic: connect, status, the command timeout's heartbeat; nothing that moves."""

    def __init__(self, tic: TicStepper) -> None:
        self.__tic = tic

    @property
    def url(self) -> str:
        return self.__tic.transport.describe()

    @property
    def stats(self) -> LinkStats:
        return self.__tic.stats

    @property
    def last_status(self) -> TicStatus | None:
        return self.__tic.last_status

    async def connect(self) -> None:
        await self.__tic.connect()

    async def close(self) -> None:
        await self.__tic.close()

    async def wait_closed(self) -> None:
        await self.__tic.wait_closed()

    async def status(self) -> TicStatus:
        return await self.__tic.status()

    async def heartbeat(self, period_s: float) -> None:
        """Feed the Tic's command timeout: it proves the host alive, and moves nothing."""
        await self.__tic.heartbeat(period_s)
