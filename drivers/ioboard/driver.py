"""The rig I/O board driver: the codec on a SerialLink, with typed async commands and no policy.

Samples are delivered synchronously from the link's data callback: between the bytes arriving
and `on_sample` being called there is no await, so a controller that decides a stop inside the
callback can call `open_pump_relay_nowait()` and have the stop bytes queued in the same turn of
the event loop.

Commands wait for the board's acknowledgement (and their reply, which arrives in the frame that
acknowledges them). A command that times out is not withdrawn: go-back-N keeps retransmitting it
until the board acknowledges it, because later frames cannot pass it. A caller that gets
`BoardTimeoutError` must treat the board's state as unknown and read `status()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from drivers.clock import REAL_CLOCK, Clock
from drivers.ioboard.codec import (
    BoardEvent,
    BoardFrame,
    BoardHostCodec,
    BoardIdent,
    BoardMessage,
    BoardProtocolError,
    BoardStatus,
    ConfigWatchdog,
    GetStatus,
    Heartbeat,
    HostMessage,
    Identify,
    Nack,
    PressureSample,
    ResetTrip,
    ResistanceTrip,
    SetCutoff,
    SetFlow,
    SetLight,
    SetPumpRelay,
    ZeroPressure,
)
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import LinkClosedError, SerialLink
from drivers.transport.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 460800
PROBE_INTERVAL_S = 0.1

_ReplyT = TypeVar("_ReplyT", BoardStatus, BoardIdent)
_MessageT = TypeVar("_MessageT", PressureSample, BoardEvent, ResistanceTrip)


class BoardTimeoutError(TimeoutError):
    """The board did not acknowledge (or answer) within the command timeout."""


class BoardCommandRejectedError(RuntimeError):
    """The board refused a command (NACK); `nack.reason` says why."""

    def __init__(self, command: HostMessage, nack: Nack) -> None:
        super().__init__(f"I/O board refused {command!r}: {nack.reason.name}")
        self.command = command
        self.nack = nack


class IoBoard:
    def __init__(
        self,
        url: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        clock: Clock = REAL_CLOCK,
        stats: LinkStats | None = None,
        on_sample: Callable[[PressureSample], None] | None = None,
        on_event: Callable[[BoardEvent], None] | None = None,
        on_resistance_trip: Callable[[ResistanceTrip], None] | None = None,
        command_timeout_s: float = 0.5,
    ) -> None:
        self.url = url
        self.stats = stats if stats is not None else LinkStats()
        self.on_sample = on_sample
        self.on_event = on_event
        self.on_resistance_trip = on_resistance_trip
        self.command_timeout_s = command_timeout_s
        self._clock = clock
        self._link = SerialLink(
            url, baudrate, self._on_data, stats=self.stats, clock=clock, on_lost=self._on_lost
        )
        self._codec = BoardHostCodec()
        self._pending: dict[int, asyncio.Future[tuple[BoardMessage, ...]]] = {}
        self._synced = asyncio.Event()
        self._kick = asyncio.Event()
        self._timer_task: asyncio.Task[None] | None = None
        # framing counters already folded into `stats` (the codec is replaced on reconnect)
        self._seen_crc_errors = 0
        self._seen_invalid_bytes = 0
        self._last_counter: int | None = None

        self.samples_lost = 0
        """Samples missing from the stream, from gaps in the 16-bit sample counter."""
        self.malformed_frames = 0
        self.last_sample: PressureSample | None = None
        self.last_status: BoardStatus | None = None
        self.last_event: BoardEvent | None = None
        self.last_resistance_trip: ResistanceTrip | None = None
        """The board's resistance-stop report: sent when it trips, and with every STATUS while
        the trip stays latched."""
        self.ident: BoardIdent | None = None

    @property
    def link(self) -> SerialLink:
        return self._link

    @property
    def codec(self) -> BoardHostCodec:
        return self._codec

    @property
    def is_connected(self) -> bool:
        return self._link.is_open and self._codec.synced

    # --- life cycle ---------------------------------------------------------------------------

    async def connect(self, timeout_s: float = 2.0) -> BoardIdent:
        """Open the port, learn the board's sequence number, IDENTIFY and GET_STATUS."""
        await self._link.open(timeout_s)
        self._codec = BoardHostCodec()
        self._seen_crc_errors = self._seen_invalid_bytes = 0
        self._last_counter = None
        self._synced.clear()
        try:
            async with asyncio.timeout(timeout_s):
                while not self._synced.is_set():
                    self._write(self._codec.probe())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(PROBE_INTERVAL_S):
                            await self._synced.wait()
            self._timer_task = asyncio.create_task(
                self._retransmit_loop(), name=f"ioboard-retransmit-{self.url}"
            )
            ident = await self.identify()
            await self.status()
        except BaseException:
            await self.close()
            raise
        return ident

    async def close(self) -> None:
        task, self._timer_task = self._timer_task, None
        await cancel_and_wait(task)
        self._fail_pending(LinkClosedError(f"{self.url} closed"))
        await self._link.close()

    # --- commands -----------------------------------------------------------------------------

    def heartbeat_nowait(self) -> float | None:
        """Send a HEARTBEAT now; return when its last byte leaves the host.

        Returns None without sending while frames are held behind a full window: the board has
        stopped acknowledging, and queueing heartbeats behind the jam would only release them in
        a burst later, which would hide the outage from the board's watchdog.
        """
        if self._codec.held_count:
            return None
        return self._send_nowait(Heartbeat())

    async def heartbeat(self) -> None:
        """Async form of `heartbeat_nowait`: acknowledged by the board's seq, not awaited here."""
        self.heartbeat_nowait()

    def open_pump_relay_nowait(self) -> float:
        """The fault path: queue SET_PUMP_RELAY(open) at once; return its tx-done time.

        Returns math.inf if the frame had to be held behind a full window (the link has stopped
        working; the board's watchdog is the backstop). Raises LinkClosedError if the port is
        not open.
        """
        done_s = self._send_nowait(SetPumpRelay(closed=False))
        return math.inf if done_s is None else done_s

    def set_flow_nowait(self, message: SetFlow) -> float | None:
        """Tell the board the flow the pump was told and its resistance-stop limits, without
        awaiting the acknowledgement (a stop calls this from the fault path). Go-back-N delivers
        it; None if it is held behind a full window."""
        return self._send_nowait(message)

    async def set_flow(self, message: SetFlow) -> None:
        """`set_flow_nowait`, awaiting the board's acknowledgement (or its NACK)."""
        await self._command(message)

    async def configure_watchdog(self, timeout_ms: int) -> None:
        await self._command(ConfigWatchdog(timeout_ms))

    async def set_pump_relay(self, closed: bool) -> None:
        await self._command(SetPumpRelay(closed))

    async def set_light(self, permille: int) -> None:
        await self._command(SetLight(permille))

    async def set_cutoff(self, mmhg: float) -> None:
        await self._command(SetCutoff(mmhg))

    async def reset_trip(self) -> None:
        await self._command(ResetTrip())

    async def zero_pressure(self) -> None:
        await self._command(ZeroPressure())

    async def status(self) -> BoardStatus:
        return await self._request(GetStatus(), BoardStatus)

    async def identify(self) -> BoardIdent:
        ident = await self._request(Identify(), BoardIdent)
        self.ident = ident
        return ident

    async def _request(self, command: HostMessage, reply_type: type[_ReplyT]) -> _ReplyT:
        """A command with a reply. Board frames are not retransmitted, so a lost reply frame is
        recovered by asking again until the timeout."""
        async with self._timeout(command):
            while True:
                for reply in await self._exchange(command):
                    if isinstance(reply, reply_type):
                        return reply

    async def _command(self, command: HostMessage) -> None:
        async with self._timeout(command):
            await self._exchange(command)

    @contextlib.asynccontextmanager
    async def _timeout(self, command: HostMessage) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.command_timeout_s):
                yield
        except TimeoutError:
            self.stats.timeouts += 1
            raise BoardTimeoutError(
                f"I/O board on {self.url}: no answer to {command!r} "
                f"within {self.command_timeout_s} s"
            ) from None

    async def _exchange(self, command: HostMessage) -> tuple[BoardMessage, ...]:
        if not self._codec.synced:
            raise LinkClosedError(f"{self.url}: not connected")
        future: asyncio.Future[tuple[BoardMessage, ...]] = (
            asyncio.get_running_loop().create_future()
        )
        data = self._codec.encode(command, now_s=self._clock.monotonic())
        seq = self._codec.last_seq
        assert seq is not None
        self._pending[seq] = future
        try:
            if data:
                self._write(data)
            replies = await future
        finally:
            if self._pending.get(seq) is future:
                del self._pending[seq]
        for reply in replies:
            if isinstance(reply, Nack) and reply.msg_id == command.MSG_ID:
                raise BoardCommandRejectedError(command, reply)
        return replies

    def _send_nowait(self, command: HostMessage) -> float | None:
        if not self._codec.synced:
            raise LinkClosedError(f"{self.url}: not connected")
        data = self._codec.encode(command, now_s=self._clock.monotonic())
        return self._write(data) if data else None

    def _write(self, data: bytes) -> float:
        done_s = self._link.write(data)
        self.stats.frames_tx += 1
        self._kick.set()
        return done_s

    # --- receive path (synchronous: runs inside the link's data callback) ---------------------

    def _on_data(self, data: bytes, rx_time_s: float) -> None:
        codec = self._codec
        codec.feed(data, rx_time_s)
        while True:
            try:
                for frame in codec.events():
                    self._on_frame(frame)
                break
            except BoardProtocolError as exc:
                self.malformed_frames += 1
                self.stats.invalid_bytes += len(exc.data)
                log.warning("I/O board on %s: %s", self.url, exc)
        self.stats.crc_errors += codec.crc_errors - self._seen_crc_errors
        self.stats.invalid_bytes += codec.invalid_bytes - self._seen_invalid_bytes
        self._seen_crc_errors, self._seen_invalid_bytes = codec.crc_errors, codec.invalid_bytes
        if codec.held_count and self._link.is_open:
            for frame_bytes in codec.data_to_send(self._clock.monotonic()):
                self._write(frame_bytes)

    def _on_frame(self, frame: BoardFrame) -> None:
        self.stats.frames_rx += 1
        if frame.rtt_s is not None:
            self.stats.record_rtt(frame.rtt_s)
        self._synced.set()
        for message in frame.messages:
            if isinstance(message, PressureSample):
                self._on_sample(message)
            elif isinstance(message, BoardEvent):
                self.last_event = message
                if self.on_event is not None:
                    self._call(self.on_event, message)
            elif isinstance(message, ResistanceTrip):
                new = message != self.last_resistance_trip
                self.last_resistance_trip = message
                # Once per trip: the same report rides with every STATUS while it is latched.
                if new and self.on_resistance_trip is not None:
                    self._call(self.on_resistance_trip, message)
            elif isinstance(message, BoardStatus):
                self.last_status = message
            elif isinstance(message, BoardIdent):
                self.ident = message
        if frame.acked_seqs:
            self._kick.set()
        for seq in frame.acked_seqs:
            future = self._pending.pop(seq, None)
            if future is not None and not future.done():
                # Replies ride in the frame that acknowledges their command; an older frame
                # acknowledged by the same board frame lost its reply frame on the way.
                future.set_result(frame.messages if seq == frame.acked_seqs[-1] else ())

    def _on_sample(self, sample: PressureSample) -> None:
        if self._last_counter is not None:
            gap = (sample.sample_counter - self._last_counter - 1) & 0xFFFF
            self.samples_lost += gap
        self._last_counter = sample.sample_counter
        self.last_sample = sample
        if self.on_sample is not None:
            self._call(self.on_sample, sample)

    def _call(self, callback: Callable[[_MessageT], None], message: _MessageT) -> None:
        # A raising consumer must not abort decoding of the frames behind this one.
        try:
            callback(message)
        except Exception:
            log.exception("I/O board on %s: callback failed on %r", self.url, message)

    def _on_lost(self, exc: Exception | None) -> None:
        self._fail_pending(LinkClosedError(f"{self.url} lost: {exc}"))

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    # --- retransmission -----------------------------------------------------------------------

    async def _retransmit_loop(self) -> None:
        while True:
            deadline_s = self._codec.retransmit_deadline_s()
            if deadline_s is None:
                self._kick.clear()
                await self._kick.wait()
                continue
            delay_s = deadline_s - self._clock.monotonic()
            if delay_s > 0:
                # Woken early by a send or an ack: either can move the deadline earlier (an ack
                # ends the back-off, and the next-oldest frame may then be due sooner).
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
                # close() sends when the wait completes in the same turn.
                self._kick.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay_s):
                        await self._kick.wait()
                continue
            frames = self._codec.frames_to_retransmit(self._clock.monotonic())
            if not frames:
                continue
            try:
                self._link.write(b"".join(frames))
            except LinkClosedError:
                return
            self.stats.retries += len(frames)
            self.stats.frames_tx += len(frames)
            log.debug("I/O board on %s: retransmitted %d frames", self.url, len(frames))
