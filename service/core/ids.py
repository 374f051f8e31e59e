"""Deterministic objectWriteTraceIds. Owns the derivation rules; does no I/O.

- An event without its own trace id gets `{topic}-{partition}-{offset}`: the same event
  always gets the same id, across restarts and replays (the last two segments are numbers,
  so the form is unambiguous whatever the topic's name).
- An input that carries several coalesced events gets `merged-<digest>`, a digest of the
  member events' trace ids in order: the same set of events always sends the same id, and
  a different set never reuses it, so a trace id is never sent with different content.
- An input resent without some properties (ON_INVALID_PROPERTY=drop) gets
  `dropped-<digest>` of its trace id and the names left out, for the same reason.
- An input sent with only its changed properties (SKIP_UNCHANGED) gets `changed-<digest>`
  of its trace id and the names left out as unchanged, for the same reason.
"""

from __future__ import annotations

import hashlib

MERGED_PREFIX = "merged-"
DROPPED_PREFIX = "dropped-"
CHANGED_PREFIX = "changed-"


def derived_trace_id(topic: str, partition: int, offset: int) -> str:
    """The trace id of an event that did not bring its own."""
    return f"{topic}-{partition}-{offset}"


def merged_trace_id(member_trace_ids: list[str]) -> str:
    """The trace id of an input that coalesces several events (in offset order)."""
    digest = hashlib.sha256("\n".join(member_trace_ids).encode()).hexdigest()
    return MERGED_PREFIX + digest[:40]


def dropped_trace_id(trace_id: str, dropped: tuple[str, ...]) -> str:
    """The trace id of an input sent without the properties `dropped` (in any order)."""
    digest = hashlib.sha256("\n".join([trace_id, *sorted(dropped)]).encode()).hexdigest()
    return DROPPED_PREFIX + digest[:40]


def changed_trace_id(trace_id: str, unchanged: tuple[str, ...]) -> str:
    """The trace id of an input sent without the properties `unchanged` (in any order), whose
    values HubSpot already holds."""
    digest = hashlib.sha256("\n".join([trace_id, *sorted(unchanged)]).encode()).hexdigest()
    return CHANGED_PREFIX + digest[:40]
