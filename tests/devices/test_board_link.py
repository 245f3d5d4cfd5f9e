"""The board's link facet: each connect starts a new sample stream for the supervision."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.ioboard import IoBoard
from drivers.transport.serial import LinkClosedError
from rig.safety.links import BoardLink


async def test_each_connect_first_tells_a_new_sample_stream_begins(tmp_path: Path) -> None:
    calls: list[str] = []
    link = BoardLink(
        IoBoard(str(tmp_path / "no-board")), before_connect=lambda: calls.append("new stream")
    )
    for _ in range(2):  # a failed attempt, then the retry: both begin a new stream
        with pytest.raises((LinkClosedError, OSError, TimeoutError)):
            await link.connect()
    assert calls == ["new stream", "new stream"]
