from __future__ import annotations

import io
import logging

import orjson

from service.adapters.logs import REDACT, JsonFormatter
from service.core.model import BatchInput, log_context
from tests.unit.factories import event


def _logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def test_each_line_is_one_json_object_with_batch_context() -> None:
    stream = io.StringIO()
    items = [
        BatchInput("a", "p", "t-1", {}, [event("a", 5, partition=2)]),
        BatchInput("b", "p", "t-2", {}, [event("b", 9, partition=2)]),
    ]
    _logger(stream).warning("transient failure", extra=log_context(7, items))
    line = orjson.loads(stream.getvalue().strip())
    assert line["level"] == "WARNING" and line["logger"] == "test.json"
    assert line["message"] == "transient failure"
    assert line["batch"] == 7 and line["inputs"] == 2
    assert line["trace_ids"] == ["t-1", "t-2"]
    assert line["offsets"] == {"subscription-events[2]": "5-9"}


def test_registered_secrets_never_reach_a_log_line_or_a_traceback() -> None:
    secret = "pat-na1-5a3e9d2c-secret"
    REDACT.add(secret)
    stream = io.StringIO()
    logger = _logger(stream)
    try:
        raise RuntimeError(f"token {secret} refused")
    except RuntimeError:
        logger.exception("call failed with %s", secret)
    assert secret not in stream.getvalue()
    assert "***" in stream.getvalue()
