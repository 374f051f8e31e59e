"""JSON logging: one object per line with level, logger, message and context fields.

Owns the log format and secret redaction. Context goes in `extra={...}` (batch, trace ids,
topic/partition/offset ranges) and comes out as top-level fields. Any registered secret
(tokens, passwords) is replaced with `***` wherever it would appear. With tracing on, a line
logged while a span is current on its thread carries `trace_id` and `span_id` (TRACE_FIELDS:
the composition root plugs in where they come from).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class Redactor:
    """Replaces known secret values in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


REDACT = Redactor()


class TraceFields:
    """The current span's ids for a log line; none until a source is plugged in."""

    def __init__(self) -> None:
        self._source: Callable[[], dict[str, str] | None] | None = None

    def use(self, source: Callable[[], dict[str, str] | None] | None) -> None:
        self._source = source

    def __call__(self) -> dict[str, str] | None:
        source = self._source
        return source() if source is not None else None


TRACE_FIELDS = TraceFields()


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": REDACT(record.getMessage()),
        }
        span = TRACE_FIELDS()
        if span:
            document.update(span)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exc"] = REDACT("".join(traceback.format_exception(*record.exc_info)))
        return orjson.dumps(document, default=str).decode()


def configure_logging(level: str) -> None:
    """Send JSON lines to stderr at `level`; quiet the chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
