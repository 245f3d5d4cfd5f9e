"""The client commands with no rig to talk to: one clear line and a non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rig.cli.client_cmds import EXIT_NO_DAEMON


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["status"], ["fluid", "stop"], ["simctl", "state"]])
def test_a_client_command_without_a_rig_says_so_in_one_line(
    command: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rig.cli.main", *command, "--broker", f"127.0.0.1:{_closed_port()}"],
        capture_output=True,
        text=True,
        env=dict(os.environ, RIG_RUNTIME_DIR=str(tmp_path)),
        timeout=30,
    )
    assert result.returncode == EXIT_NO_DAEMON, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot reach the broker at 127.0.0.1:" in result.stderr
    assert "is the rig running?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
