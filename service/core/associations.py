"""Associations to contacts, companies, deals: the requests and what their replies say. Pure.

Owns:
- the paths: reading targets by a unique property (`POST /crm/v3/objects/{type}/batch/read`,
  or the date-versioned `/crm/objects/{version}/{type}/batch/read`) and the v4 association
  endpoints (`/crm/v4/associations/{from}/{to}/batch/associate/default` for HubSpot's default
  association, `.../batch/create` for a labelled one; date-versioned
  `/crm/associations/{version}/...`);
- the bodies, at most BATCH_LIMIT inputs each;
- reading the replies: the targets a read found (matched by the unique property's value in
  each result's `properties`, never by position), and the links an association request
  refused (errors naming `fromObjectId`/`toObjectId` in their context; an error naming none
  is about the whole request);
- TargetCache: targets resolved to HubSpot ids, so a repeated customer costs no extra read
  (bounded LRU, entries expiring after a TTL, thread-safe).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import NamedTuple, TypeVar

import orjson

from service.core.model import DEFAULT_ASSOCIATION_CATEGORY, AssociationRef, ErrorInfo
from service.core.outcomes import error_message

BATCH_LIMIT = 100  # inputs per read or association request
ASSOCIATION_FAILED = "ASSOCIATION_FAILED"

TargetKey = tuple[str, str, str]  # object type, unique property, value
T = TypeVar("T")


def target_key(ref: AssociationRef) -> TargetKey:
    return (ref.to_type, ref.id_property, ref.value)


class Link(NamedTuple):
    """One association to make: from the subscription, to a resolved target."""

    from_id: str
    to_id: str
    ref: AssociationRef


class ApiPaths(NamedTuple):
    api_version: str  # `v3` (v4 for associations), or a date such as `2026-03`
    from_type: str  # the object type the service upserts, e.g. `subscriptions`

    def read(self, object_type: str) -> str:
        if self.api_version.startswith("v"):
            return f"/crm/v3/objects/{object_type}/batch/read"
        return f"/crm/objects/{self.api_version}/{object_type}/batch/read"

    def associate(self, to_type: str, *, labelled: bool) -> str:
        verb = "create" if labelled else "associate/default"
        pair = f"{self.from_type}/{to_type}"
        if self.api_version.startswith("v"):
            return f"/crm/v4/associations/{pair}/batch/{verb}"
        return f"/crm/associations/{self.api_version}/{pair}/batch/{verb}"


def chunks(items: list[T]) -> Iterator[list[T]]:
    """`items` in runs of at most BATCH_LIMIT: one request each."""
    for start in range(0, len(items), BATCH_LIMIT):
        yield items[start : start + BATCH_LIMIT]


def read_body(id_property: str, values: list[str]) -> bytes:
    """Read records by a unique property; the property is asked for, to match the results."""
    inputs = [{"id": value} for value in values]
    return orjson.dumps({"idProperty": id_property, "properties": [id_property], "inputs": inputs})


def found_targets(document: dict[str, object] | None, id_property: str) -> dict[str, str]:
    """The HubSpot id of each target a read found, by its unique property's value."""
    found: dict[str, str] = {}
    for result in _dicts((document or {}).get("results")):
        properties = result.get("properties")
        value = properties.get(id_property) if isinstance(properties, dict) else None
        hubspot_id = result.get("id")
        if isinstance(value, str) and isinstance(hubspot_id, str | int):
            found[value] = str(hubspot_id)
    return found


def associate_body(links: list[Link], *, labelled: bool) -> bytes:
    inputs = [_input(link, labelled=labelled) for link in links]
    return orjson.dumps({"inputs": inputs})


def _input(link: Link, *, labelled: bool) -> dict[str, object]:
    if not labelled:
        return {"from": {"id": link.from_id}, "to": {"id": link.to_id}}
    kind = {
        "associationCategory": link.ref.category or DEFAULT_ASSOCIATION_CATEGORY,
        "associationTypeId": link.ref.type_id,
    }
    return {"from": {"id": link.from_id}, "to": {"id": link.to_id}, "types": [kind]}


def refused_links(
    document: dict[str, object] | None, links: list[Link], http_status: int
) -> dict[Link, ErrorInfo]:
    """The links an association reply's errors name, with their error; an error naming no
    link refuses every link of the request."""
    refused: dict[Link, ErrorInfo] = {}
    for error in _dicts((document or {}).get("errors")):
        info = ErrorInfo(ASSOCIATION_FAILED, error_message(error), http_status)
        named = _named(error, links)
        for link in named if named else links:
            refused.setdefault(link, info)
    return refused


def _named(error: dict[str, object], links: list[Link]) -> list[Link]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    froms, tos = _strings(context.get("fromObjectId")), _strings(context.get("toObjectId"))
    if not froms and not tos:
        return []
    return [
        link
        for link in links
        if (not froms or link.from_id in froms) and (not tos or link.to_id in tos)
    ]


def _strings(value: object) -> set[str]:
    if isinstance(value, str | int):
        return {str(value)}
    return {str(v) for v in value if isinstance(v, str | int)} if isinstance(value, list) else set()


def _dicts(value: object) -> Iterable[dict[str, object]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else ()


class TargetCache:
    """Targets resolved to HubSpot ids: at most `max_entries`, each for `ttl_s` (a record
    deleted and created again gets a new id). Found targets only: a missing one is asked for
    again next time. Shared by the worker threads, which also share reads in progress: a
    target one thread is reading is waited for by the others (`claim`, `settle`), so a
    customer many batches name at once is still read once."""

    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self._max, self._ttl_s = max_entries, ttl_s
        self._entries: OrderedDict[TargetKey, tuple[str, float]] = OrderedDict()
        self._reading: dict[TargetKey, threading.Event] = {}
        self._missing: dict[TargetKey, float] = {}  # read and not found, for the waiters
        self._lock = threading.Lock()

    def get(self, key: TargetKey, now: float) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: TargetKey, hubspot_id: str, now: float) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._put(key, hubspot_id, now)

    def claim(self, keys: Iterable[TargetKey]) -> tuple[list[TargetKey], list[TargetKey]]:
        """Split `keys` into those this thread is to read (claimed now) and those another
        thread is reading (wait for them with `awaited`)."""
        mine: list[TargetKey] = []
        theirs: list[TargetKey] = []
        with self._lock:
            for key in keys:
                if key in self._reading:
                    theirs.append(key)
                else:
                    self._reading[key] = threading.Event()
                    mine.append(key)
        return mine, theirs

    def settle(
        self, claimed: Iterable[TargetKey], found: dict[TargetKey, str | None], now: float
    ) -> None:
        """What this thread's read of its `claimed` targets found (None: not found; a key
        left out: no answer, e.g. the read failed); their waiters go on."""
        with self._lock:
            for key in claimed:
                if key in found:
                    hubspot_id = found[key]
                    if hubspot_id is None:
                        self._missing[key] = now + _MISSING_NOTED_S
                    elif self._max > 0:
                        self._put(key, hubspot_id, now)
                done = self._reading.pop(key, None)
                if done is not None:
                    done.set()
            self._missing = {k: until for k, until in self._missing.items() if until > now}

    def awaited(self, key: TargetKey, timeout_s: float, now: float) -> str | bool | None:
        """Wait for another thread's read of `key`: its HubSpot id, None when that read
        found nothing, or False when it gave no answer (read it yourself)."""
        with self._lock:
            reading = self._reading.get(key)
        if reading is not None and not reading.wait(timeout_s):
            return False
        with self._lock:
            if key in self._missing:
                return None
        found = self.get(key, now)
        return found if found is not None else False

    def _put(self, key: TargetKey, hubspot_id: str, now: float) -> None:
        self._entries[key] = (hubspot_id, now + self._ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


_MISSING_NOTED_S = 5.0  # how long a read that found nothing answers the threads waiting on it
