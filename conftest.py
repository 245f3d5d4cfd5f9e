"""Options that must be known before pytest collects anything (pytest reads them only here)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.hazard_plugin"]

DEFAULT_BENCH_PUMP_BOOT_S = 3.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop conformance suites (hil_tests/)")
    group.addoption(
        "--bench-profile",
        metavar="FILE",
        type=Path,
        default=None,
        help="run hil_tests against the real pump and I/O board named in this rig profile "
        "(default: against the emulators)",
    )
    group.addoption(
        "--pump-boot-s",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_BENCH_PUMP_BOOT_S,
        help="bench only: time a real pump needs to boot after its power relay closes "
        f"(default {DEFAULT_BENCH_PUMP_BOOT_S})",
    )


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """Put the root logger back after each test: a test that runs the CLI in-process
    (`configure_logging`) leaves a handler on pytest's captured stderr, which is closed after
    that test; every later log call in the test process then prints a logging error, slowly
    enough to starve an in-process rig's event loop."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
