"""Service logs: one JSON object per line on stderr, for the service's own events and for uvicorn's.

Structured fields travel in ``extra={"fields": {...}}``; tracebacks go in a ``traceback`` field of the same
line, so a log collector never splits one error across lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS = "nbship.access"
SERVICE = "nbship.service"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = record.created
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            document.update(fields)
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send the ``nbship.*`` loggers to stderr as JSON lines (idempotent; leaves other loggers alone)."""
    logger = logging.getLogger("nbship")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's ``log_config``: its own messages as JSON lines too (its access log is replaced by ours)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
        },
    }
