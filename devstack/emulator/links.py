"""Associations between records: directed links, each with its set of association types.

Owns the link table. A link is (from type, from id, to type, to id) with the association
types it carries, each `(category, type id)`, in the order first added; adding a type a link
already has changes nothing (HubSpot's associate calls are idempotent). Both directions are
stored: the caller adds the inverse type on the reverse link. Not thread-safe: `Store` calls
it under its lock. It knows nothing of which types exist; `catalog` does.
"""

from __future__ import annotations

from typing import Any

Spec = tuple[str, int]  # association category, association type id
Source = tuple[str, str, str]  # from type, from id, to type


class LinkTable:
    """Links, by their from end and the type at the other end."""

    def __init__(self) -> None:
        self._links: dict[Source, dict[str, list[Spec]]] = {}
        self._count = 0

    def __len__(self) -> int:
        """Distinct (link, type) pairs, counting each direction."""
        return self._count

    def add(self, from_type: str, from_id: str, to_type: str, to_id: str, spec: Spec) -> bool:
        """Give the link this type; False when it already had it."""
        specs = self._links.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, [])
        if spec in specs:
            return False
        specs.append(spec)
        self._count += 1
        return True

    def targets(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, list[Spec]]]:
        """The records of `to_type` this record links to, each with its types (copies)."""
        found = self._links.get((from_type, from_id, to_type), {})
        return [(to_id, list(specs)) for to_id, specs in found.items() if specs]

    def snapshot(
        self, from_type: str | None = None, to_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Every link (optionally of one pair of types), one entry per direction and type."""
        return [
            {
                "fromObjectType": source[0],
                "fromObjectId": source[1],
                "toObjectType": source[2],
                "toObjectId": to_id,
                "category": category,
                "typeId": type_id,
            }
            for source, targets in self._links.items()
            if from_type in (None, source[0]) and to_type in (None, source[2])
            for to_id, specs in targets.items()
            for category, type_id in specs
        ]
