"""Maps a successful (2xx) upsert reply to one outcome per batch input. Pure.

Results are correlated by the idProperty value in each result's `properties`, falling
back to the echoed `objectWriteTraceId`; never by position. Errors of a 207 are matched
through `context.objectWriteTraceId`. An input named by neither is handed back for resending;
so is one whose error is a rate limit (a 207 may carry per-input `RATE_LIMITS` errors), but
apart: it is not a reply that lost the input, only one that came too soon.

An error that names no input (HubSpot documents every field as optional) still counts: a
rate-limit one makes every input left without an outcome rate-limited; another one is the
outcome of the only input left, or, with several left, has them resent one per request so
that the next reply's error can only be about the input sent.

A per-input error is about the input's content (ErrorInfo.content), and names the properties
HubSpot said do not exist or are read-only when those are all it is about
(ErrorInfo.invalid_properties), read from HubSpot's "Property values were not valid: [...]"
message and its `errors[]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from service.core.model import (
    BatchInput,
    BatchTiming,
    ErrorInfo,
    InputOutcome,
    Status,
    UpsertedRecord,
)

TRANSIENT_INPUT_CATEGORIES = frozenset({"RATE_LIMITS"})
# Property problems a lenient service may resolve by leaving the property out.
DROPPABLE_PROPERTY_ERRORS = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
_PROPERTY_PROBLEMS = "Property values were not valid: "


@dataclass(slots=True)
class MappedReply:
    """Final outcomes by trace id, and the inputs that must be sent again: those the reply
    did not name, and those it named with a rate-limit error."""

    outcomes: dict[str, InputOutcome] = field(default_factory=dict)
    resend: list[BatchInput] = field(default_factory=list)
    rate_limited: list[BatchInput] = field(default_factory=list)
    resend_one_by_one: bool = False  # an error named none of them: send each on its own
    unattributed: list[ErrorInfo] = field(default_factory=list)


def map_success(
    inputs: list[BatchInput], http_status: int, document: dict[str, object] | None
) -> MappedReply:
    """One outcome per input from a 2xx reply; unmatched inputs go back for resending."""
    document = document or {}
    timing = batch_timing(document)
    index = _Index(inputs)
    mapped = MappedReply()
    for result in _dicts(document.get("results")):
        matched = index.match_result(result)
        if matched is not None:
            mapped.outcomes[matched.trace_id] = _upserted(result, timing)
    for error in _dicts(document.get("errors")):
        _apply_error(error, index, http_status, timing, mapped)
    outcomes = mapped.outcomes
    limited = {item.trace_id: item for item in mapped.rate_limited if item.trace_id not in outcomes}
    left = [
        item for item in inputs if item.trace_id not in outcomes and item.trace_id not in limited
    ]
    mapped.rate_limited = list(limited.values())
    _account_for_unattributed(mapped, left, timing)
    return mapped


def _account_for_unattributed(
    mapped: MappedReply, left: list[BatchInput], timing: BatchTiming
) -> None:
    """Inputs with no outcome yet are resent; errors that named no input decide how."""
    errors = mapped.unattributed
    if any(error.category in TRANSIENT_INPUT_CATEGORIES for error in errors):
        mapped.rate_limited.extend(left)  # too soon, not lost: held, never failed
    elif len(left) == 1 and len(errors) == 1:
        mapped.outcomes[left[0].trace_id] = InputOutcome(
            Status.FAILED, error=errors[0], timing=timing
        )
    else:
        mapped.resend.extend(left)
        mapped.resend_one_by_one = bool(errors) and len(left) > 1


def batch_timing(document: dict[str, object]) -> BatchTiming:
    return BatchTiming(
        status=_str(document.get("status")),
        requested_at=_str(document.get("requestedAt")),
        started_at=_str(document.get("startedAt")),
        completed_at=_str(document.get("completedAt")),
    )


class _Index:
    def __init__(self, inputs: list[BatchInput]) -> None:
        self.by_value = {(item.id_property, item.id): item for item in inputs}
        self.by_trace = {item.trace_id: item for item in inputs}
        self.id_properties = {item.id_property for item in inputs}

    def match_result(self, result: dict[str, object]) -> BatchInput | None:
        properties = result.get("properties")
        if isinstance(properties, dict):
            for id_property in self.id_properties:
                value = properties.get(id_property)
                if isinstance(value, str) and (id_property, value) in self.by_value:
                    return self.by_value[(id_property, value)]
        trace = result.get("objectWriteTraceId")
        return self.by_trace.get(trace) if isinstance(trace, str) else None


def _upserted(result: dict[str, object], timing: BatchTiming) -> InputOutcome:
    new = result.get("new")
    created_at, updated_at = result.get("createdAt"), result.get("updatedAt")
    record = UpsertedRecord(
        str(result.get("id", "")),
        new if isinstance(new, bool) else None,
        created_at if isinstance(created_at, str) else None,
        updated_at if isinstance(updated_at, str) else None,
    )
    return InputOutcome(Status.UPSERTED, record, None, timing)


def _apply_error(
    error: dict[str, object],
    index: _Index,
    http_status: int,
    timing: BatchTiming,
    mapped: MappedReply,
) -> None:
    category = _str(error.get("category")) or "UNKNOWN"
    named = [item for trace in _error_traces(error) if (item := index.by_trace.get(trace))]
    info = ErrorInfo(
        category=category,
        message=error_message(error),
        http_status=http_status,
        invalid_properties=invalid_property_names(error),
        content=True,
    )
    if not named:
        mapped.unattributed.append(info)
    elif category in TRANSIENT_INPUT_CATEGORIES:
        mapped.rate_limited.extend(named)
        return
    for item in named:
        mapped.outcomes[item.trace_id] = InputOutcome(Status.FAILED, error=info, timing=timing)


def invalid_property_names(error: dict[str, object]) -> tuple[str, ...]:
    """The properties an error says do not exist or are read-only, when every problem it
    names is one of those; () when it names another problem too, or none it can read."""
    problems = [*_listed_problems(_str(error.get("message")) or ""), *_sub_problems(error)]
    names: list[str] = []
    for code, name in problems:
        if code not in DROPPABLE_PROPERTY_ERRORS:
            return ()
        if name is not None and name not in names:
            names.append(name)
    return tuple(names)


def _listed_problems(message: str) -> list[tuple[str | None, str | None]]:
    """(error, name) of each entry of `Property values were not valid: [{...}, ...]`."""
    start = message.find(_PROPERTY_PROBLEMS)
    if start < 0:
        return []
    try:
        listed, _ = json.JSONDecoder().raw_decode(message, start + len(_PROPERTY_PROBLEMS))
    except ValueError:
        return [(None, None)]  # a problem list it cannot read: not known to be droppable
    return [(_str(entry.get("error")), _str(entry.get("name"))) for entry in _dicts(listed)]


def _sub_problems(error: dict[str, object]) -> list[tuple[str | None, str | None]]:
    """(code, property name if given) of each entry of `errors[]` that has a code."""
    found: list[tuple[str | None, str | None]] = []
    for sub in _dicts(error.get("errors")):
        code = _str(sub.get("code"))
        if code is None:
            continue
        context = sub.get("context")
        names = context.get("propertyName") if isinstance(context, dict) else None
        name = names[0] if isinstance(names, list) and names else None
        found.append((code, name if isinstance(name, str) else None))
    return found


def error_message(error: dict[str, object]) -> str:
    """The error's message, with sub-error messages appended when they add detail."""
    message = _str(error.get("message")) or "no message"
    details = [
        text
        for sub in _dicts(error.get("errors"))
        if (text := _str(sub.get("message"))) and text not in message
    ]
    return "; ".join([message, *details])


def _error_traces(error: dict[str, object]) -> list[str]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    traces = context.get("objectWriteTraceId")
    if isinstance(traces, str):
        return [traces]
    return [t for t in traces if isinstance(t, str)] if isinstance(traces, list) else []


def _dicts(value: object) -> Iterable[dict[str, object]]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return ()


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
