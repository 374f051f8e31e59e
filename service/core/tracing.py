"""Tracing switched off, and the trace-context headers records carry when it is on.

Owns two things the loop and the records share, neither of them OpenTelemetry:
- `NO_TRACING`, the tracing ports (service/core/ports.py) when no OTLP endpoint is set: its
  spans are one shared object that records nothing and gives no headers, so a batch costs a
  few empty calls and an event nothing (service/adapters/tracing/ is the real one);
- the headers records take from the span that decided an outcome: a result record gets its
  `traceparent` (and `tracestate`) and the event's own `baggage`, which travels with the
  event (`result_trace_headers`); a dead letter keeps its event's headers but takes the span's
  trace context in place of the event's (`with_trace_context`: the event's own context is
  its producer's, which the batch span links to), so a consumer sees one `traceparent`, the
  one that decided.
"""

from __future__ import annotations

from types import TracebackType

from service.core.model import Batch, BatchOutcome, Rejection, TraceHeaders

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
TRACE_CONTEXT_HEADERS = frozenset({TRACEPARENT, TRACESTATE})


def result_trace_headers(
    trace_headers: TraceHeaders, event_headers: list[tuple[str, bytes]] | None
) -> list[tuple[str, bytes]] | None:
    """A result record's headers: the span's context and the event's `baggage` (None: off)."""
    if not trace_headers:
        return None
    headers = list(trace_headers)
    headers.extend((name, value) for name, value in event_headers or () if name == BAGGAGE)
    return headers


def with_trace_context(
    headers: list[tuple[str, bytes]], trace_headers: TraceHeaders
) -> list[tuple[str, bytes]]:
    """`headers` without their trace context, then `trace_headers` (unchanged when empty)."""
    if not trace_headers:
        return headers
    kept = [(name, value) for name, value in headers if name not in TRACE_CONTEXT_HEADERS]
    kept.extend(trace_headers)
    return kept


class _NoSpan:
    """Both span ports, doing nothing: the one object every batch and request gets."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def request(self, inputs: int, waited_s: float) -> _NoSpan:
        return self

    def finished(self, outcome: BatchOutcome) -> None:
        return None

    def replied(self, status: int) -> None:
        return None

    def failed(self, error: BaseException) -> None:
        return None

    def exemplar(self) -> dict[str, str] | None:
        return None

    def headers(self) -> TraceHeaders:
        return ()


_NO_SPAN = _NoSpan()
NO_SPAN = _NO_SPAN  # a batch span that records nothing (requests outside a traced batch)


class NoTracing:
    """The tracing ports with tracing off: no span, no header."""

    def batch(self, batch: Batch) -> _NoSpan:
        return _NO_SPAN

    def rejected(self, rejection: Rejection) -> TraceHeaders:
        return ()


NO_TRACING = NoTracing()
