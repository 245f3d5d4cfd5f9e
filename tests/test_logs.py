"""Structured logs: one JSON object per line, the event's fields kept as fields."""

from __future__ import annotations

import json
import logging

from rig.logs import JsonLineFormatter


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
