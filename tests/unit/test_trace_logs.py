"""Log lines name the span current on their thread (tracing on): a worker's lines about a
batch carry its `process` span's ids, and never a property value or the token."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from service.adapters.logs import REDACT, TRACE_FIELDS, JsonFormatter
from service.adapters.tracing import log_fields
from service.core.model import Batch, BatchInput
from tests.unit.factories import event
from tests.unit.fakes import FakeTransport, make_caller, ok_for, reply
from tests.unit.tracing_support import hex_ids, traced

TOKEN = "pat-na1-77777777-8888-9999-aaaa-bbbbbbbbbbbb"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Every record of the service's loggers as JSON lines, span ids plugged in."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("service")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    TRACE_FIELDS.use(log_fields)
    REDACT.add(TOKEN)
    try:
        yield stream
    finally:
        TRACE_FIELDS.use(None)
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_workers_lines_about_a_batch_carry_its_span_and_no_value(lines: io.StringIO) -> None:
    found = event("sub-1", 3, hs_name="Distinctive Value 9931")
    batch = Batch(2, [BatchInput("sub-1", found.id_property, "t", found.properties, [found])], 0)
    transport = FakeTransport(lambda _: reply(503, {"message": "busy"}), ok_for)
    with traced() as spans:
        caller, _, _ = make_caller(transport, tracing=spans.tracing)
        caller.execute(batch)
        process = spans.one("process")
    logging.getLogger("service.test").info("after the batch")

    retry, after = _parsed(lines)
    assert str(retry["message"]).startswith("transient failure (503")
    trace_id, span_id = hex_ids(process.context)
    assert (retry["trace_id"], retry["span_id"]) == (trace_id, span_id)
    assert "trace_id" not in after and "span_id" not in after
    assert "Distinctive Value 9931" not in lines.getvalue()


def test_without_a_source_no_line_names_a_span(lines: io.StringIO) -> None:
    TRACE_FIELDS.use(None)
    with traced() as spans:
        caller, _, _ = make_caller(
            FakeTransport(lambda _: reply(503, {"message": TOKEN}), ok_for), tracing=spans.tracing
        )
        found = event("sub-1", 3)
        caller.execute(Batch(1, [BatchInput("sub-1", "p", "t", {}, [found])], 0))
    [retry] = _parsed(lines)
    assert "trace_id" not in retry
    assert TOKEN not in lines.getvalue()
