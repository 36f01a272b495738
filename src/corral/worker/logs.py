"""Logging for worker processes: text for people, JSON lines for collectors."""

from __future__ import annotations

import json
import logging
import sys
import time

from corral.errors import ConfigError

__all__ = ["setup_logging"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, role, logger, message (+ exception)."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, fmt: str, *, role: str) -> None:
    """Configure the root logger of this process; ConfigError names a bad level or format."""
    level = level.upper()
    if level not in LEVELS:
        raise ConfigError(f"--log-level {level!r} is not one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(role))
    elif fmt == "text":
        formatter = logging.Formatter(
            f"%(asctime)s.%(msecs)03d %(levelname)-7s [{role}] %(message)s", "%H:%M:%S"
        )
        formatter.converter = time.localtime
        handler.setFormatter(formatter)
    else:
        raise ConfigError(f"--log-format {fmt!r} is not one of text, json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
