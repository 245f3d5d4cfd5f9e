"""Background work: a process whose CPU time must never delay the fluid loop's.

Video (the camera process; the simulated camera's renderer) runs beside the daemon on a few
cores. Under Linux's fair scheduler (EEVDF) a task at nice 19 that holds a CPU keeps it for
the rest of its slice when the daemon wakes there, so the daemon's timers wake late. A
SCHED_IDLE task is preempted at once by any ordinary task waking on its CPU, and weighs less
than nice 19 when the CPUs are short. Lowering one's own policy needs no privilege.

What it does not change: against other sessions the video's CPU share is its session's
(autogroups weigh sessions, not tasks), as it was at nice 19. A video process moved into a
session of its own at autogroup nice 19 starved under the shared machine's load (frames
stopped for 400 ms, the video alarm raised): that is not done.

The policy is per thread: every thread of the process is set, and threads started later
inherit it (numpy's BLAS threads exist from import on, before any of ours).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

BACKGROUND_NICE = 19
"""Where SCHED_IDLE is missing (not Linux) or refused, the lowest niceness instead."""


def run_in_background() -> None:
    """This process and all its threads as background work (SCHED_IDLE; else nice 19)."""
    tasks = Path("/proc/self/task")
    for tid in [int(task.name) for task in tasks.iterdir()] if tasks.is_dir() else [0]:
        run_thread_in_background(tid)


def run_thread_in_background(tid: int = 0) -> None:
    """One thread (`tid`, 0 for the calling one) as background work."""
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            return
        except OSError as exc:
            log.warning("SCHED_IDLE refused (%s): nice %d instead", exc, BACKGROUND_NICE)
    os.setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
