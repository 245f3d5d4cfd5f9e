from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.system.hang_report import _tasks_reported_before_a_timeout
from tests.system.harness import RigUnderTest, running_rig

__all__ = ["_tasks_reported_before_a_timeout"]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[RigUnderTest]:
    """The simulated rig, self-tested and ready."""
    async with running_rig(tmp_path) as under_test:
        await under_test.wait_ready()
        yield under_test
