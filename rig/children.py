"""Child processes that do not outlive the process that started them (Linux).

`rig sim`, the benchmarks and the system tests start a broker, a simulator and a daemon, each in
a session of its own (a Ctrl-C in the terminal reaches only the launcher, which stops them in
the safe order: rig/launcher.py). A launcher that is SIGKILLed (a killed pytest, the OOM killer)
runs no shutdown at all, and its children ran on without it, holding their ports and CPU on a
shared machine. With the parent-death signal (prctl PR_SET_PDEATHSIG) the kernel sends each
child SIGTERM when its parent goes, and SIGTERM is each child's own orderly shutdown (the daemon
stops the pump and its camera process; the simulator and Mosquitto exit). They get it together,
not in the launcher's order: that order only matters to a daemon stopping a pump, and it stops
the pump on losing the simulated board anyway.

Two properties of the signal shape this:
- It fires when the *thread* that forked the child ends, not the process. Only the main thread
  lives as long as the process, so children forked from any other thread (an event loop run in
  a worker thread) are left as before rather than killed when that thread returns.
- A parent that died between the fork and the prctl sends nothing: the child checks that its
  parent is still the process that forked it, and fails its start otherwise.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def die_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` (subprocess.Popen, asyncio.create_subprocess_exec) that ties the child to
    this process; None where the tie cannot hold (not Linux, or not on the main thread)."""
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    return tied_to(os.getpid())


def tied_to(parent_pid: int) -> Callable[[], None]:
    """The `preexec_fn` for a child of `parent_pid`: SIGTERM when its parent dies, and no start
    at all if it has died already."""
    # Looked up here, in the parent: the child, between fork and exec, only calls it.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    prctl.restype = ctypes.c_int

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:
            raise ChildProcessError(f"the parent {parent_pid} died before the child started")

    return in_child
