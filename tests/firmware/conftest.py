"""Fixtures of the firmware's tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware import calibration


class FlashRoot:
    """A directory standing for the board's flash root on sys.path, as `/` is on the board."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, text: str) -> None:
        (self.root / "calibration.py").write_text(text)
        sys.modules.pop(calibration.MODULE, None)  # the board reads it once, at boot


@pytest.fixture
def flash_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlashRoot]:
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(calibration.MODULE, None)
    yield FlashRoot(tmp_path)
    sys.modules.pop(calibration.MODULE, None)
