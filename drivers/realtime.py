"""The control daemon's event loop as real-time work: it runs before anything else on the machine.

Every timer of the fluid loop shares the daemon's event loop, so that loop's wake-up lateness is
the fluid loop's jitter. On a few cores, under Linux's fair scheduler, a waking loop waits for
whatever holds its CPU to use up its slice: with video and a broker beside it, `rig bench camera`
measured p99 lateness 2.4-4.7 ms on 2 cores. Lowering the video (drivers/background.py) does not
cure it: autogroups weigh sessions, not tasks, so a background thread of another session holds
its CPU as any task would. A SCHED_FIFO loop preempts every fair-scheduled task at once: measured
p99 1.4-1.6 ms in the same run (docs/camera.md).

Real-time scheduling needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority (systemd's
`LimitRTPRIO=`, or `CPUSchedulingPolicy=fifo`). Without it the daemon runs as before, says so
in its log and its state, and the rest of the safety layer is unchanged: the loop-stall guard
and the board's watchdog do not depend on the loop's priority.

Why the priority is low (10 of 99): kernel threads that must preempt the loop (interrupt
threads at 50) still do; and the kernel's real-time throttling leaves the fair tasks a share of
every second should the loop ever spin (the loop-stall guard's thread, one above the loop, is
the one that reports it).

Processes the daemon starts (the camera process) do not inherit the policy: SCHED_RESET_ON_FORK
gives each new task, thread or process, the ordinary policy. The daemon's threads that share the
GIL with the loop (its executor's, the journal's) make themselves real-time one step below it
(`join_control_loop`): a thread holding the GIL while a fair task runs in its place would stall
the loop as surely as a busy CPU (a probed run saw 31 ms), and at the loop's own priority their
bursts would hold off its wake-ups (p99 1.9-2.2 ms against 1.25-1.42 ms, two runs each).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

LOOP_PRIORITY = 10
"""SCHED_FIFO priority of the daemon's event loop (1..99)."""
SWITCH_INTERVAL_S = 0.001
"""How long a thread waits for the GIL before it asks the holder to let go (Python's default is
5 ms, a whole beat of the loop)."""

_priority: int | None = None
"""The loop's real-time priority in this process, or None when it runs as ordinary work."""


def run_as_control_loop() -> str:
    """Make the calling thread (the daemon's event loop) real-time, and its peers' handover of
    the GIL quick. Call it on the main thread before the daemon starts its threads.

    Returns how the loop is scheduled, for the daemon's state: "SCHED_FIFO 10", or "ordinary"
    with the reason.
    """
    global _priority
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if not hasattr(os, "SCHED_FIFO"):
        return "ordinary (no real-time scheduling on this system)"
    try:
        os.sched_setscheduler(
            0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(LOOP_PRIORITY)
        )
    except OSError as exc:
        log.warning(
            "the event loop runs as ordinary work, not SCHED_FIFO %d (%s): its timers wake "
            "later under load; grant CAP_SYS_NICE or LimitRTPRIO=%d",
            LOOP_PRIORITY,
            exc.strerror or exc,
            LOOP_PRIORITY,
        )
        return f"ordinary (SCHED_FIFO refused: {exc.strerror or exc})"
    _priority = LOOP_PRIORITY
    return f"SCHED_FIFO {LOOP_PRIORITY}"


HELPER_OFFSET = -1
"""The loop's helper threads: above every ordinary task, below the loop."""
WATCHER_OFFSET = 1
"""The loop-stall guard's thread: above the loop it watches."""


def join_control_loop(offset: int = HELPER_OFFSET) -> None:
    """The calling thread real-time at the loop's priority plus `offset`, where the loop is
    real-time; otherwise nothing. For the loop's helpers (below it) and its watcher (above)."""
    if _priority is None:
        return
    try:
        os.sched_setscheduler(
            0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(_priority + offset)
        )
    except OSError as exc:  # the loop got it, so this is not expected; the thread runs on
        log.warning("a thread of the daemon stays ordinary work: %s", exc)
