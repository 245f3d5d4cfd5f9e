"""`rig sim` keeps its last few run directories and removes the older ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rig.launcher import KEEP_RUN_DIRS, LAUNCHER_PID_FILE, prune_run_dirs


def _run_dirs(parent: Path, count: int, oldest_launcher_pid: int | None = None) -> list[Path]:
    """`count` run directories, oldest first (mtimes one minute apart), whose launchers have
    exited; the oldest one's launcher is `oldest_launcher_pid` if given."""
    dead_pid = _dead_pid()
    dirs = []
    for index in range(count):
        path = parent / f"rig-sim-1-{index:02d}"
        path.mkdir()
        (path / "daemon.log").write_text("{}\n")
        pid = oldest_launcher_pid if index == 0 and oldest_launcher_pid is not None else dead_pid
        (path / LAUNCHER_PID_FILE).write_text(f"{pid}\n")
        os.utime(path, (1_000_000 + 60 * index, 1_000_000 + 60 * index))
        dirs.append(path)
    return dirs


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_newest_run_dirs_are_kept_and_the_rest_removed(tmp_path: Path) -> None:
    dirs = _run_dirs(tmp_path, KEEP_RUN_DIRS + 3)
    other = tmp_path / "rig-bench-2-00"
    other.mkdir()
    removed = prune_run_dirs(tmp_path, "rig-sim-1-", KEEP_RUN_DIRS)
    assert sorted(removed) == dirs[:3]
    assert sorted(p for p in tmp_path.iterdir() if p.name.startswith("rig-sim-1-")) == dirs[3:]
    assert other.exists(), "another rig's run directories are not this one's to prune"


def test_a_run_dir_whose_launcher_still_runs_is_never_removed(tmp_path: Path) -> None:
    dirs = _run_dirs(tmp_path, KEEP_RUN_DIRS + 1, oldest_launcher_pid=os.getpid())
    assert prune_run_dirs(tmp_path, "rig-sim-1-", KEEP_RUN_DIRS) == []
    assert dirs[0].exists()


def test_a_run_dir_that_names_no_launcher_is_left_alone(tmp_path: Path) -> None:
    """Made by an older version or another tool sharing /tmp: not provably ours to remove."""
    dirs = _run_dirs(tmp_path, KEEP_RUN_DIRS + 1)
    (dirs[0] / LAUNCHER_PID_FILE).unlink()
    os.utime(dirs[0], (1_000_000, 1_000_000))
    assert prune_run_dirs(tmp_path, "rig-sim-1-", KEEP_RUN_DIRS) == []
