"""Traces as Jaeger's HTTP query API (``/api/traces``) returns them, parsed for assertions.

Jaeger stores OpenTelemetry spans in its own model, and the JSON says so:

* the parent is a ``CHILD_OF`` reference (within the trace): :attr:`Span.parent_id`;
* each OpenTelemetry span link is a ``FOLLOWS_FROM`` reference, possibly into another trace:
  :attr:`Span.links`. The links' own attributes are not in this API (``/api/v3`` keeps them);
* attributes, the span kind (``span.kind``) and the status (``otel.status_code``,
  ``otel.status_description``, ``error``) are tags: :attr:`Span.tags`;
* events are logs whose ``event`` field is the name: :attr:`Span.events`;
* the resource's ``service.name`` is the process's ``serviceName``: :attr:`Span.service`, and
  the other resource attributes are the process's tags: :attr:`Span.resource`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "Span", "SpanLink", "Trace", "parse_trace"]


@dataclass(frozen=True)
class SpanLink:
    """A span link: the linked span's trace and span ids (lower-case hex)."""

    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Event:
    """A span event: its name and attributes."""

    name: str
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class Span:
    """One span of a :class:`Trace`. Times are microseconds (since the epoch for ``start_us``)."""

    trace_id: str
    span_id: str
    name: str
    service: str
    parent_id: str | None
    links: tuple[SpanLink, ...]
    tags: Mapping[str, Any]
    events: tuple[Event, ...]
    resource: Mapping[str, Any]
    start_us: int
    duration_us: int

    @property
    def kind(self) -> str | None:
        """``internal``, ``server``, ``client``, ``producer`` or ``consumer`` (``None``: unset)."""
        kind = self.tags.get("span.kind")
        return str(kind) if kind is not None else None


@dataclass(frozen=True)
class Trace:
    """A trace: its id and spans (in the order Jaeger returned them)."""

    trace_id: str
    spans: tuple[Span, ...]

    def named(self, name: str) -> list[Span]:
        """Every span called ``name``."""
        return [span for span in self.spans if span.name == name]

    def span(self, name: str) -> Span:
        """The one span called ``name``; ``LookupError`` when there are none or several."""
        found = self.named(name)
        if len(found) != 1:
            names = sorted(span.name for span in self.spans)
            raise LookupError(
                f"{len(found)} spans named {name!r} in trace {self.trace_id}: {names}"
            )
        return found[0]

    def children(self, parent: Span) -> list[Span]:
        """The spans whose parent is ``parent``."""
        return [span for span in self.spans if span.parent_id == parent.span_id]

    def roots(self) -> list[Span]:
        """The spans without a parent in this trace."""
        return [span for span in self.spans if span.parent_id is None]


def _key_values(items: Any) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in items or ()}


def _event(log: Mapping[str, Any]) -> Event:
    fields = _key_values(log.get("fields"))
    return Event(name=str(fields.pop("event", "")), attributes=fields)


def _span(raw: Mapping[str, Any], processes: Mapping[str, Any]) -> Span:
    references = raw.get("references") or ()
    parents = [ref["spanID"] for ref in references if ref["refType"] == "CHILD_OF"]
    links = tuple(
        SpanLink(ref["traceID"], ref["spanID"])
        for ref in references
        if ref["refType"] == "FOLLOWS_FROM"
    )
    process = processes.get(raw.get("processID", ""), {})
    return Span(
        trace_id=raw["traceID"],
        span_id=raw["spanID"],
        name=raw["operationName"],
        service=process.get("serviceName", ""),
        parent_id=parents[0] if parents else None,
        links=links,
        tags=_key_values(raw.get("tags")),
        events=tuple(_event(log) for log in raw.get("logs") or ()),
        resource=_key_values(process.get("tags")),
        start_us=int(raw["startTime"]),
        duration_us=int(raw["duration"]),
    )


def parse_trace(raw: Mapping[str, Any]) -> Trace:
    """One element of ``/api/traces``'s ``data`` list."""
    processes = raw.get("processes") or {}
    spans = tuple(_span(span, processes) for span in raw.get("spans") or ())
    return Trace(trace_id=raw["traceID"], spans=spans)
