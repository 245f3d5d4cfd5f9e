"""Async driver for an NE-1000 syringe pump: typed methods over a serial link, no policy.

The pump answers every frame in order and its replies carry no tag, so the driver keeps a FIFO
of expected replies: each written frame appends one entry, each decoded reply resolves the
oldest. A lock serialises the normal write-then-wait exchanges; `stop_nowait` bypasses it (the
fault path) and simply appends its entry behind whatever is already in flight.

Choices:

- Retries: only `query`, `version` and `dispensed` are retried, once, after a timeout or a
  corrupt reply. A command that changes the pump is never repeated blindly: a lost reply does not
  mean a lost command (the pump may have acted and its answer been garbled), and repeating e.g.
  ``DIR REV`` or ``RUN`` after a start the host did not see is not the same as sending it once.
  The error goes up; the rig decides (it can query the state, and it owns the relay).
- A corrupt reply (bad CRC, or in basic mode a delimited frame that is not a reply) still marks
  one reply's place: it fails the oldest expectation, so the FIFO stays in step.
- Resynchronisation after a timeout: the timed-out expectations stay in the FIFO so that a late
  reply is absorbed by them rather than mistaken for the next one. Before the next locked
  exchange the driver listens for a quiet line: `resync_quiet_s` with no byte in or out,
  counted from the start of the resynchronisation at the earliest and bounded by `RESYNC_MAX_S`.
  Then it drops every expectation and any partial frame, and only then writes. A reply later than
  that is still taken for the next one: untagged replies cannot be matched better, which is one
  more reason why commands are not resent blindly.
- Safe mode: ``SAF n`` changes how the pump reads what follows it, so the framing of commands
  switches as soon as ``SAF`` is written (a `stop_nowait` racing it is framed the way the pump
  will read it) and the framing of replies switches when the ``SAF`` reply arrives (the pump
  frames that reply in the old mode). An error or alarm reply to ``SAF`` reverts the command
  framing.
- `connect` forgets the last alarm, then probes with up to three queries (the first after
  power-up is swallowed; the next may be answered ``A?R``, which is remembered in `last_alarm`),
  and, if none is answered in basic
  mode, three more in safe mode: a pump left in safe mode by a previous host process ignores
  basic-mode commands.
- A lost link fails every waiting exchange with `LinkClosedError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from drivers.clock import REAL_CLOCK, Clock
from drivers.ne1000.codec import (
    AlarmKind,
    AlarmReply,
    ClearDispensed,
    Command,
    DataReply,
    Direction,
    DispensedReply,
    ErrorReply,
    GetDispensed,
    GetVersion,
    Ne1000Codec,
    Ne1000CrcError,
    Ne1000ProtocolError,
    PumpStatus,
    Query,
    Reply,
    Run,
    SetDiameter,
    SetDirection,
    SetRate,
    SetSafeMode,
    SetVolume,
    Stop,
    VersionReply,
)
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import LinkClosedError, SerialLink

log = logging.getLogger(__name__)

RESYNC_MAX_S = 1.0
PROBE_ATTEMPTS = 3


class PumpError(Exception):
    """Base of the errors the pump driver raises (besides `LinkClosedError`)."""


class PumpTimeoutError(PumpError, TimeoutError):
    pass


class PumpCommandError(PumpError):
    """The pump refused a command (``?``, ``NA``, ``OOR``, ``COM``, ``IGN``)."""

    def __init__(self, code: str, command: Command | None = None) -> None:
        super().__init__(f"pump answered ?{code} to {command}")
        self.code = code
        self.command = command


class PumpAlarmError(PumpError):
    """The pump answered with an alarm; the command was not acted on."""

    def __init__(self, alarm: AlarmKind, command: Command | None = None) -> None:
        super().__init__(f"pump alarm {alarm.name} in reply to {command}")
        self.alarm = alarm
        self.command = command


class PumpProtocolError(PumpError):
    """The reply was corrupt or of an unexpected kind."""


@dataclass(frozen=True)
class Dispensed:
    infused_ml: float
    withdrawn_ml: float
    status: PumpStatus


@dataclass
class _Expected:
    """One reply the pump owes us."""

    future: asyncio.Future[tuple[Reply, float]]
    on_reply: Callable[[Reply], None] | None = None


class Ne1000Pump:
    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 19200,
        address: int = 0,
        safe_mode_timeout_s: int = 0,
        reply_timeout_s: float = 0.2,
        resync_quiet_s: float = 0.05,
        clock: Clock = REAL_CLOCK,
        stats: LinkStats | None = None,
    ) -> None:
        SetSafeMode(safe_mode_timeout_s)  # validates 0..255 now rather than at connect
        self.safe_mode_timeout_s = safe_mode_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.resync_quiet_s = resync_quiet_s
        self._clock = clock
        self._address = address
        self.stats = stats if stats is not None else LinkStats()
        self.link = SerialLink(
            url, baudrate, self._on_data, stats=self.stats, clock=clock, on_lost=self._on_lost
        )
        self._codec = Ne1000Codec(address)
        self._tx_safe_mode = False
        self._expected: deque[_Expected] = deque()
        self._lock = asyncio.Lock()
        self._needs_resync = False
        self._last_activity_s = 0.0
        self._discarded_seen = 0
        self._connected = False
        self.last_alarm: AlarmKind | None = None
        self.last_status: PumpStatus | None = None
        self.last_stop_tx_done_s: float | None = None
        self.last_stop_reply: Reply | None = None
        self.unsolicited_replies = 0

    @property
    def is_connected(self) -> bool:
        return self._connected and self.link.is_open

    @property
    def safe_mode(self) -> bool:
        """Whether the pump reads our commands as safe-mode packets."""
        return self._tx_safe_mode

    # --- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.link.open()
        self._codec = Ne1000Codec(self._address)
        self._tx_safe_mode = False
        self._expected.clear()
        self._discarded_seen = 0
        # What this connection finds: an alarm from before (reported, and cleared on the pump by
        # that report) must not be taken for one the pump raises now.
        self.last_alarm = None
        await self._probe()
        if self.safe_mode_timeout_s > 0 or self._tx_safe_mode:
            await self._set_safe_mode(self.safe_mode_timeout_s)
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        await self.link.close()
        self._fail_all(LinkClosedError(f"{self.link.url} closed"))

    async def wait_closed(self) -> None:
        """Return when the link has been lost or closed."""
        await self.link.wait_closed()

    async def _probe(self) -> None:
        for safe in (False, True):
            self._tx_safe_mode = self._codec.safe_mode = safe
            for _ in range(PROBE_ATTEMPTS):
                try:
                    await self._exchange(Query(), retry=False)
                    return
                except (PumpTimeoutError, PumpProtocolError):
                    continue
                except PumpAlarmError:
                    continue  # remembered in last_alarm; reporting it cleared it
        self._tx_safe_mode = self._codec.safe_mode = False
        raise PumpTimeoutError(f"no answer from an NE-1000 on {self.link.url}")

    async def _set_safe_mode(self, timeout_s: int) -> None:
        old = self._tx_safe_mode
        new = timeout_s > 0

        def switch_rx(reply: Reply) -> None:
            if isinstance(reply, ErrorReply | AlarmReply):
                self._tx_safe_mode = old
            else:
                self._codec.safe_mode = new

        await self._exchange(SetSafeMode(timeout_s), retry=False, on_reply=switch_rx, tx_mode=new)

    # --- typed commands ----------------------------------------------------------------------

    async def query(self) -> PumpStatus:
        reply = await self._exchange(Query(), retry=True)
        return _status_of(reply)

    async def version(self) -> str:
        reply = await self._exchange(GetVersion(), retry=True)
        if isinstance(reply, VersionReply):
            return reply.text
        if isinstance(reply, DataReply):
            return reply.data
        raise PumpProtocolError(f"VER answered with {reply}")

    async def set_diameter(self, mm: float) -> None:
        await self._exchange(SetDiameter(mm), retry=False)

    async def set_rate(self, ml_min: float) -> None:
        await self._exchange(SetRate(ml_min), retry=False)

    async def set_direction(self, direction: Direction) -> None:
        await self._exchange(SetDirection(direction), retry=False)

    async def set_volume_ul(self, ul: float) -> None:
        await self._exchange(SetVolume(ul), retry=False)

    async def run(self) -> None:
        await self._exchange(Run(), retry=False)

    async def stop(self) -> None:
        await self._exchange(Stop(), retry=False)

    async def dispensed(self) -> Dispensed:
        reply = await self._exchange(GetDispensed(), retry=True)
        if not isinstance(reply, DispensedReply):
            raise PumpProtocolError(f"DIS answered with {reply}")
        return Dispensed(reply.infused_ml, reply.withdrawn_ml, reply.status)

    async def clear_dispensed(self, direction: Direction) -> None:
        await self._exchange(ClearDispensed(direction), retry=False)

    # --- the fault path ----------------------------------------------------------------------

    def stop_nowait(self) -> float:
        """Write ``STP`` now, ahead of anything waiting for the lock; never awaits.

        Returns the clock time the last byte leaves the host. The reply is consumed in FIFO order
        and kept in `last_stop_reply` (an alarm also lands in `last_alarm`).
        """
        frame = self._codec.encode(Stop(), safe_mode=self._tx_safe_mode)
        done_s = self.link.write(frame)
        self._note_tx(1)
        expected = self._expect()
        expected.on_reply = self._record_stop_reply
        expected.future.add_done_callback(_swallow_result)
        self.last_stop_tx_done_s = done_s
        return done_s

    def stop_from_thread(self) -> None:
        """Write ``STP`` from a thread while the event loop is stalled (the loop-stall guard).

        The pump's reply is not expected by anyone: it arrives as an unsolicited reply, or is
        absorbed by the resynchronisation after the next timeout.
        """
        self.link.write_from_thread(self._codec.encode(Stop(), safe_mode=self._tx_safe_mode))

    def _record_stop_reply(self, reply: Reply) -> None:
        self.last_stop_reply = reply

    # --- exchanges ---------------------------------------------------------------------------

    async def _exchange(
        self,
        command: Command,
        *,
        retry: bool,
        on_reply: Callable[[Reply], None] | None = None,
        tx_mode: bool | None = None,
    ) -> Reply:
        """Send `command`, wait for its reply (the last one if it has several), check it."""
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                reply = await self._exchange_once(command, on_reply, tx_mode)
            except (PumpTimeoutError, PumpProtocolError):
                if attempt + 1 == attempts:
                    raise
                self.stats.retries += 1
                log.info("retrying %s", command)
                continue
            return reply
        raise AssertionError("unreachable")

    async def _exchange_once(
        self,
        command: Command,
        on_reply: Callable[[Reply], None] | None,
        tx_mode: bool | None,
    ) -> Reply:
        async with self._lock:
            await self._resync_if_needed()
            frames = self._codec.encode_frames(command, safe_mode=self._tx_safe_mode)
            # A command of several frames (``VOL UL`` then ``VOL n``) is sent one frame at a
            # time, each after the reply to the one before, as the manual asks; an error or
            # alarm on one frame stops the rest from going out.
            for index, frame in enumerate(frames):
                last = index == len(frames) - 1
                sent_s = self._clock.monotonic()
                self.link.write(frame)
                self._note_tx(1)
                if last and tx_mode is not None:
                    self._tx_safe_mode = tx_mode
                expected = self._expect()
                if last:
                    expected.on_reply = on_reply
                try:
                    async with asyncio.timeout(self.reply_timeout_s):
                        reply, rx_s = await expected.future
                except TimeoutError:
                    self.stats.timeouts += 1
                    self._needs_resync = True
                    expected.future.add_done_callback(_swallow_result)
                    raise PumpTimeoutError(
                        f"no reply to {command} within {self.reply_timeout_s} s"
                    ) from None
                except Ne1000ProtocolError as exc:
                    raise PumpProtocolError(f"corrupt reply to {command}: {exc}") from exc
                _raise_for(reply, command)
        self.stats.record_rtt(rx_s - sent_s)
        return reply

    def _expect(self) -> _Expected:
        expected = _Expected(asyncio.get_running_loop().create_future())
        self._expected.append(expected)
        return expected

    def _note_tx(self, frames: int) -> None:
        self.stats.frames_tx += frames
        self._last_activity_s = self._clock.monotonic()

    async def _resync_if_needed(self) -> None:
        if not self._needs_resync:
            return
        start_s = self._clock.monotonic()
        give_up_s = start_s + RESYNC_MAX_S
        while True:
            # The gap counts from now at the earliest: a late reply may be on its way already.
            now_s = self._clock.monotonic()
            quiet_for_s = now_s - max(self._last_activity_s, start_s)
            if quiet_for_s >= self.resync_quiet_s or now_s >= give_up_s:
                break
            await self._clock.sleep(self.resync_quiet_s - quiet_for_s)
        # No await from here to the caller's write: nothing can slip in between.
        self._fail_all(PumpTimeoutError("expectation dropped while resynchronising"))
        self._codec.clear()
        self._count_discarded()
        self._needs_resync = False

    # --- receive path (synchronous, from the link's callback) --------------------------------

    def _on_data(self, data: bytes, rx_time_s: float) -> None:
        self._last_activity_s = self._clock.monotonic()
        self._codec.feed(data)
        while True:
            try:
                for reply in self._codec.replies():
                    self.stats.frames_rx += 1
                    self._resolve(reply, rx_time_s)
                break
            except Ne1000ProtocolError as exc:
                if isinstance(exc, Ne1000CrcError):
                    self.stats.crc_errors += 1
                log.warning("%s: %s", self.link.url, exc)
                self._fail_oldest(exc)
        self._count_discarded()

    def _resolve(self, reply: Reply, rx_time_s: float) -> None:
        if isinstance(reply, AlarmReply):
            self.last_alarm = reply.alarm
        else:
            self.last_status = reply.status
        if not self._expected:
            self.unsolicited_replies += 1
            log.warning("%s: unsolicited reply %s", self.link.url, reply)
            return
        expected = self._expected.popleft()
        if expected.on_reply is not None:
            expected.on_reply(reply)
        if not expected.future.done():
            expected.future.set_result((reply, rx_time_s))

    def _fail_oldest(self, exc: Exception) -> None:
        if self._expected:
            future = self._expected.popleft().future
            if not future.done():
                future.set_exception(exc)

    def _fail_all(self, exc: Exception) -> None:
        while self._expected:
            future = self._expected.popleft().future
            if not future.done():
                future.add_done_callback(_swallow_result)
                future.set_exception(exc)

    def _count_discarded(self) -> None:
        discarded = self._codec.discarded_bytes
        self.stats.invalid_bytes += discarded - self._discarded_seen
        self._discarded_seen = discarded

    def _on_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self._fail_all(LinkClosedError(f"{self.link.url} lost: {exc}"))


def _swallow_result(future: asyncio.Future[tuple[Reply, float]]) -> None:
    """Mark an exception nobody will await as retrieved (it has been logged or counted)."""
    if not future.cancelled():
        future.exception()


def _status_of(reply: Reply) -> PumpStatus:
    if isinstance(reply, AlarmReply):
        raise PumpProtocolError(f"expected a prompt, got {reply}")
    return reply.status


def _raise_for(reply: Reply, command: Command) -> None:
    if isinstance(reply, AlarmReply):
        raise PumpAlarmError(reply.alarm, command)
    if isinstance(reply, ErrorReply):
        raise PumpCommandError(reply.code, command)
