"""The loop-stall guard: if the event loop stops turning, something outside it stops the pump.

Every stop the rig decides is taken on the event loop. If the loop hangs (a blocking call, a
runaway computation, a deadlock in a library), nothing on it can act: so a plain thread watches
a beat the loop updates every few milliseconds, and when the beat is older than the limit the
thread writes the pump's stop frame to the serial port itself. The board's heartbeat watchdog
backs it up independently: the heartbeats come from the same stalled loop.

When the loop turns again, the guard reports the stall there, where it becomes a latched fault.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from drivers.realtime import WATCHER_OFFSET, join_control_loop

log = logging.getLogger(__name__)

BEAT_PERIOD_S = 0.005
LATENESS_BEATS = 12_000
"""The beats whose lateness is kept: a minute or a little more."""


class LoopStallGuard:
    def __init__(
        self,
        limit_s: float,
        emergency_stop: Callable[[], None],
        on_stall_reported: Callable[[float], None],
    ) -> None:
        """`emergency_stop` runs on the watcher thread (it must not touch the event loop);
        `on_stall_reported(stall_s)` runs on the loop once it turns again."""
        self.limit_s = limit_s
        self._emergency_stop = emergency_stop
        self._on_stall_reported = on_stall_reported
        self._last_beat_s = time.monotonic()
        self._stall_started_s: float | None = None
        self._fired = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.stops_written = 0
        self._lateness_ms = np.zeros(LATENESS_BEATS, np.float32)
        self._beats = 0
        self._figures: dict[str, float] | None = None
        self._figures_at_s = -1.0

    def lateness_ms(self) -> dict[str, float] | None:
        """How late the loop's beats woke over the last minute: the event loop's jitter, which
        every timer of the fluid loop shares (rig bench camera reports it with video running)."""
        now_s = time.monotonic()
        if now_s - self._figures_at_s < 1.0:
            return self._figures  # the state is read often; these change slowly
        kept = self._lateness_ms[: min(self._beats, LATENESS_BEATS)]
        if kept.size == 0:
            return None
        p50, p99 = np.percentile(kept, (50, 99))
        self._figures_at_s = now_s
        self._figures = {
            "p50": round(float(p50), 3),
            "p99": round(float(p99), 3),
            "max": round(float(kept.max()), 3),
            "beats": int(kept.size),
            "window_s": round(kept.size * BEAT_PERIOD_S),  # at the nominal beat
        }
        return self._figures

    async def run(self) -> None:
        """Beat on the loop and run the watcher thread, until cancelled."""
        self._last_beat_s = time.monotonic()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="loop-stall-guard", daemon=True)
        self._thread.start()
        try:
            while True:
                now_s = time.monotonic()
                if self._fired.is_set():
                    stall_s = now_s - (self._stall_started_s or now_s)
                    self._fired.clear()
                    self._on_stall_reported(stall_s)
                late_s = now_s - self._last_beat_s - BEAT_PERIOD_S
                self._lateness_ms[self._beats % LATENESS_BEATS] = max(0.0, late_s * 1000.0)
                self._beats += 1
                self._last_beat_s = now_s
                await asyncio.sleep(BEAT_PERIOD_S)
        finally:
            self._stopping.set()

    def _watch(self) -> None:
        join_control_loop(WATCHER_OFFSET)  # a spinning real-time loop must not hold off its watcher
        check_s = min(self.limit_s / 4, 0.01)
        while not self._stopping.wait(check_s):
            last_beat_s = self._last_beat_s
            silent_s = time.monotonic() - last_beat_s
            if silent_s <= self.limit_s or self._fired.is_set():
                continue
            self._stall_started_s = last_beat_s
            try:
                self._emergency_stop()
                self.stops_written += 1
                log.critical(
                    "event loop stalled for %.0f ms: pump stop written from the guard thread",
                    silent_s * 1000,
                )
            except Exception as exc:
                log.critical(
                    "event loop stalled and the guard could not write the pump stop: %s", exc
                )
            self._fired.set()
            # Wait for the loop to acknowledge before watching again: one stop per stall.
            while self._fired.is_set() and not self._stopping.wait(check_s):
                pass
