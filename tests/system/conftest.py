from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.system.harness import RigUnderTest, running_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[RigUnderTest]:
    """The simulated rig, self-tested and ready."""
    async with running_rig(tmp_path) as under_test:
        await under_test.wait_ready()
        yield under_test
