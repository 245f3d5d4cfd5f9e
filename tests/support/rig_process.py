"""The `rig` command line as its own process, as a user runs it, for the system tests."""

from __future__ import annotations

import asyncio
import sys


async def run_rig(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `rig ARGS` to its end; return its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rig.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
