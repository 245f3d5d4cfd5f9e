"""Structured logs: one JSON object per line, the event's fields kept as fields."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.logs import LOG_FILE_BACKUPS, LOG_FILE_MAX_BYTES, JsonLineFormatter, configure_logging


def test_json_line_keeps_extra_fields_and_exceptions() -> None:
    record = logging.makeLogRecord(
        {
            "name": "rig.daemon",
            "levelname": "INFO",
            "msg": "event %s",
            "args": ("stop",),
            "event": {
                "kind": "stop",
                "cause": "resistance_rise",
                "figures": {"pressure_mmhg": 31.2},
            },
        }
    )
    line = JsonLineFormatter().format(record)
    entry = json.loads(line)
    assert (
        entry["msg"] == "event stop"
        and entry["level"] == "info"
        and entry["logger"] == "rig.daemon"
    )
    assert entry["event"]["figures"]["pressure_mmhg"] == 31.2
    assert "\n" not in line

    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    assert "ValueError: boom" in json.loads(JsonLineFormatter().format(failed))["exc"]


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_a_log_file_rotates_at_its_size_and_keeps_a_bounded_number_of_old_files(
    tmp_path: Path,
) -> None:
    log_file = tmp_path / "daemon.log"
    configure_logging(log_file=log_file, max_bytes=2_000)
    log = logging.getLogger("rig.daemon")
    for index in range(500):
        log.info("line %d", index, extra={"event": {"kind": "stop"}})
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["daemon.log", *(f"daemon.log.{n}" for n in range(1, LOG_FILE_BACKUPS + 1))]
    assert all(path.stat().st_size <= 2_000 for path in tmp_path.iterdir())
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["msg"] == "line 499" and last["event"] == {"kind": "stop"}


@pytest.mark.usefixtures("restore_root_logger")
def test_the_default_rotation_is_bounded(tmp_path: Path) -> None:
    configure_logging(log_file=tmp_path / "daemon.log")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert handler.maxBytes == LOG_FILE_MAX_BYTES > 0
    assert handler.backupCount == LOG_FILE_BACKUPS > 0
