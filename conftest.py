"""Options that must be known before pytest collects anything (pytest reads them only here)."""

from __future__ import annotations

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
