"""CRM records of every object type: their properties, unique-value index and write history.

Owns the upsert merge (properties not sent are kept, `""` clears), batch creation, HubSpot id
allocation (one sequence for all object types), and finding a record by its HubSpot id or by
the value of any unique property. A record is keyed by (object type, HubSpot id); the index
maps (object type, unique property, value) to its HubSpot id, for the id property it was
upserted by and for every other unique property it holds. Not thread-safe: `Store` calls it
under its lock. It does not validate; `validation` does that first.

Per-request work is O(inputs): writes keep a reference to the request's own property dict. A
record is a string-only dict and tuples of strings, which the garbage collector stops
tracking. Known gap: a write giving a unique property a value another record already holds
is applied, and the index keeps pointing at the first holder (HubSpot would refuse it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

FIRST_HUBSPOT_ID = 100_001
HUBSPOT_ID = "hs_object_id"

Key = tuple[str, str]  # object type, HubSpot id
IndexKey = tuple[str, str, str]  # object type, unique property, value
# createdAt, and the property the record was first written by (hs_object_id: created by id).
Identity = tuple[str, str]
# An applied input: HubSpot id, properties right after the write, createdAt, created or not.
Applied = tuple[str, dict[str, str], str, bool]


class Write(NamedTuple):
    """One applied input, as sent (the properties dict is the request's, never mutated)."""

    trace_id: str | None
    properties: Mapping[str, str]
    at: str
    request_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "traceId": self.trace_id,
            "properties": dict(self.properties),
            "at": self.at,
            "requestSeq": self.request_seq,
        }


class UpsertItem(Protocol):
    """A validated input ready to apply (every property value a string)."""

    @property
    def id_value(self) -> str: ...

    @property
    def id_property(self) -> str: ...

    @property
    def trace_id(self) -> str | None: ...

    @property
    def properties(self) -> Mapping[str, str]: ...


class RecordTable:
    """Records, their unique-value index and write history."""

    def __init__(self) -> None:
        self._properties: dict[Key, dict[str, str]] = {}
        self._identities: dict[Key, Identity] = {}
        self._index: dict[IndexKey, str] = {}
        self._history: dict[Key, list[tuple[str | None, Mapping[str, str], str, int]]] = {}
        self._next_id = FIRST_HUBSPOT_ID

    def __len__(self) -> int:
        return len(self._properties)

    def find(self, object_type: str, prop: str, value: str) -> str | None:
        """The HubSpot id of the record whose `prop` (unique, or hs_object_id) is `value`."""
        if prop == HUBSPOT_ID:
            return value if (object_type, value) in self._properties else None
        return self._index.get((object_type, prop, value))

    def get(self, object_type: str, hubspot_id: str) -> tuple[dict[str, str], str] | None:
        """A copy of a record's properties, and its createdAt; None when there is none."""
        properties = self._properties.get((object_type, hubspot_id))
        if properties is None:
            return None
        return properties.copy(), self._identities[(object_type, hubspot_id)][0]

    def existing(self, object_type: str, items: Sequence[UpsertItem]) -> list[bool]:
        index = self._index
        return [(object_type, i.id_property, i.id_value) in index for i in items]

    def upsert(
        self, object_type: str, items: Sequence[UpsertItem], at: str, unique: Collection[str]
    ) -> list[Applied]:
        """Merge every item into its record (created when new), stamping `at`."""
        return [self._upsert_one(object_type, item, at, unique) for item in items]

    def create(
        self, object_type: str, rows: Sequence[Mapping[str, str]], at: str, unique: Collection[str]
    ) -> list[Applied]:
        """New records with these properties (no id property: found by HubSpot id)."""
        created = []
        for row in rows:
            hubspot_id = self._create(object_type, at, HUBSPOT_ID)
            properties = self._properties[(object_type, hubspot_id)]
            self._reindex(object_type, hubspot_id, properties, row, unique)
            properties.update(row)
            properties["hs_lastmodifieddate"] = at
            created.append((hubspot_id, properties.copy(), at, True))
        return created

    def remember(
        self,
        object_type: str,
        items: Sequence[UpsertItem],
        applied: Sequence[Applied],
        at: str,
        seq: int,
    ) -> None:
        """Append each item's write to the history of the record it was `applied` to."""
        history = self._history
        for item, done in zip(items, applied, strict=True):
            entry = (item.trace_id, item.properties, at, seq)
            history.setdefault((object_type, done[0]), []).append(entry)

    def snapshot(self, object_type: str) -> dict[str, dict[str, Any]]:
        """Records of one type, keyed by the value of the property each was first written by
        (its id value when upserted; its HubSpot id when created)."""
        return {
            self._name(key): _record_json(self._identities[key], properties)
            for key, properties in self._properties.items()
            if key[0] == object_type
        }

    def history(self, object_type: str) -> dict[str, list[dict[str, Any]]]:
        """Writes of one type's records in the order applied, keyed as in `snapshot`."""
        return {
            self._name(key): [Write(*w).to_json() for w in writes]
            for key, writes in self._history.items()
            if key[0] == object_type
        }

    def _name(self, key: Key) -> str:
        return self._properties[key][self._identities[key][1]]

    def _upsert_one(
        self, object_type: str, item: UpsertItem, at: str, unique: Collection[str]
    ) -> Applied:
        index_key = (object_type, item.id_property, item.id_value)
        hubspot_id = self._index.get(index_key)
        new = hubspot_id is None
        if hubspot_id is None:
            hubspot_id = self._create(object_type, at, item.id_property)
            self._index[index_key] = hubspot_id
        properties = self._properties[(object_type, hubspot_id)]
        if unique:
            self._reindex(object_type, hubspot_id, properties, item.properties, unique)
        properties.update(item.properties)
        properties[item.id_property] = item.id_value
        properties["hs_lastmodifieddate"] = at
        return (hubspot_id, properties.copy(), self._identities[(object_type, hubspot_id)][0], new)

    def _reindex(
        self,
        object_type: str,
        hubspot_id: str,
        old: Mapping[str, str],
        new: Mapping[str, str],
        unique: Collection[str],
    ) -> None:
        """Point the index at this record for the unique values `new` writes."""
        for prop in unique:
            value = new.get(prop)
            if value is None or value == old.get(prop):
                continue
            previous = old.get(prop)
            if previous and self._index.get((object_type, prop, previous)) == hubspot_id:
                del self._index[(object_type, prop, previous)]
            if value:
                self._index.setdefault((object_type, prop, value), hubspot_id)

    def _create(self, object_type: str, at: str, id_property: str) -> str:
        """A new record's HubSpot id (the caller writes its properties)."""
        hubspot_id = str(self._next_id)
        self._next_id += 1
        key = (object_type, hubspot_id)
        self._identities[key] = (at, id_property)
        self._properties[key] = {HUBSPOT_ID: hubspot_id, "hs_createdate": at}
        return hubspot_id


def _record_json(identity: Identity, properties: dict[str, str]) -> dict[str, Any]:
    created_at, id_property = identity
    return {
        "hubspotId": properties[HUBSPOT_ID],
        "idProperty": id_property,
        "properties": dict(properties),
        "createdAt": created_at,
        "updatedAt": properties["hs_lastmodifieddate"],
    }
