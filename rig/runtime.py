"""Where a running rig can be found: the broker and rig id that `rig sim` started.

`rig sim` writes this file; the client commands (`rig status`, `rig watch`, `rig fluid ...`)
read it when no `--broker` is given, so a bench engineer types no port numbers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


def runtime_dir() -> Path:
    base = os.environ.get("RIG_RUNTIME_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "rig"


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (someone else's counts: it is not ours to judge)."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class RunningRig:
    rig_id: str
    broker_host: str
    broker_port: int
    run_dir: str
    launcher_pid: int
    credentials_file: str | None = None
    """The private broker's user -> password file (mode 0600), if it has one."""
    profile_path: str | None = None
    """The profile the rig runs (client help texts quote its limits)."""

    @property
    def link_dir(self) -> Path:
        """Where the simulator links its devices' pseudo-terminals (`pump`, `board`)."""
        return Path(self.run_dir) / "dev"

    @staticmethod
    def path() -> Path:
        return runtime_dir() / "current.json"

    def save(self) -> None:
        target = self.path()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(target)

    @classmethod
    def load(cls) -> RunningRig | None:
        try:
            data = json.loads(cls.path().read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    @classmethod
    def clear(cls, launcher_pid: int) -> None:
        current = cls.load()
        if current is not None and current.launcher_pid == launcher_pid:
            cls.path().unlink(missing_ok=True)
