"""Logging set-up: readable lines on a terminal, JSON lines for files and log collectors.

JSON lines keep every field of an event (a stop's cause, its figures, the device and link) as a
field, so a bench engineer can filter a long run with `jq` instead of a regular expression.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Final, Literal

LogFormat = Literal["text", "json"]

LOG_FILE_MAX_BYTES: Final = 10 * 1024 * 1024
"""A log file is rotated at 10 MiB: about a day of a busy daemon's INFO lines, and small enough
to open in an editor or attach to a report."""
LOG_FILE_BACKUPS: Final = 4
"""Rotated files kept (`daemon.log.1` .. `.4`): with the live file at most 50 MiB per run."""

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    *,
    verbose: bool = False,
    log_format: LogFormat | None = None,
    log_file: Path | None = None,
    max_bytes: int = LOG_FILE_MAX_BYTES,
) -> None:
    """Text on a terminal, JSON lines otherwise, unless `log_format` says which. With
    `log_file`, the lines go to that file (JSON unless told otherwise), rotated at `max_bytes`
    with LOG_FILE_BACKUPS old files kept, so a long run cannot fill the disk."""
    handler: logging.Handler
    if log_file is None:
        chosen = log_format or ("text" if sys.stderr.isatty() else "json")
        handler = logging.StreamHandler()
    else:
        chosen = log_format or "json"
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    if chosen == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
