"""The [record] section: the procedure record's storage and trends (docs/record.md)."""

from __future__ import annotations

from typing import ClassVar

from rig.config.base import Section
from rig.config.bounds import Bound, field_default, register_bounds

register_bounds(
    Bound(
        "record.min_free_mb",
        "MB",
        500.0,
        "engineering choice: a procedure's journal, trends and snapshots take tens of MB and "
        "its video about 1 GB/h (docs/record.md); below this no new procedure starts",
        10,
        1_000_000,
    ),
    Bound(
        "record.trend_period_ms",
        "ms",
        500.0,
        "engineering choice: 2 Hz trends resolve the line's 300 ms time constant in a report "
        "while a 1 h procedure stays at 7200 rows; the live 50 Hz telemetry is not recorded",
        100,
        10_000,
    ),
)


class RecordConfig(Section):
    _section: ClassVar[str] = "record"

    min_free_mb: float = field_default("record.min_free_mb")
    trend_period_ms: float = field_default("record.trend_period_ms")
