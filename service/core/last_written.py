"""What this member last wrote to HubSpot, per id: the memory SKIP_UNCHANGED compares with.

Pure: takes a clock, does no I/O. For each (idProperty, id) upserted successfully of late it
keeps a 64-bit digest of every property value written, the HubSpot id of the record, and the
partition whose events were written. `compare` says which of an input's properties equal
what was last written; `remember` records a successful write (merged into a valid entry:
HubSpot then holds both); `forget` drops an id whose write failed or may have landed.

Bounds:
- at most `max_ids` entries, the least recently used (compared or written) leaving first;
- an entry expires `ttl_s` after the write that created it; writes merged into it do not
  extend it, so a value edited by hand in HubSpot is written again at the first input after
  that (a missing entry makes the next input go whole, and start a new entry);
- the entries of partitions that leave go with them (`drop_partitions`): a partition's new
  owner starts cold, and so does this member if the partition comes back.
An entry speaks only for events of its own partition: an input with events of another
partition is not compared with it (the entry goes), so events of one id that arrive on two
partitions never skip a write the other partition's owner may have overwritten.

A digest is Python's str hash: SipHash-1-3 with a key drawn at random per process, 64 bits,
computed once per string object. Equal values have equal digests; two different values
collide with a chance of 2^-64 per comparison (a collision would skip one changed value until
the entry expires). Entries are compact: the sorted property names are shared between
entries with the same names, and the digests are packed 8 bytes each into one bytes object,
with the HubSpot id.

Not thread-safe: one thread uses it (the loop's: service/loop/skipping.py).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from service.core.clock import Clock
from service.core.offsets import TopicPartition

Key = tuple[str, str]  # (idProperty, id)
_NAMES_TABLE_MAX = 4_096  # distinct property-name sets shared; then the table starts over
_EXPIRED_PER_WRITE = 4  # expired entries removed from the least recently used end per write


@dataclass(frozen=True, slots=True)
class Comparison:
    """An input against what was last written for its id: `same` are the properties whose
    values are unchanged (the rest changed, or were never written)."""

    same: tuple[str, ...]
    hubspot_id: str


@dataclass(slots=True)
class CacheCounts:
    """What the cache did since it was made (the metrics report the increase)."""

    hits: int = 0  # compared with a valid entry
    misses: int = 0  # no entry, an expired one, or one of another partition
    evicted: int = 0  # the least recently used, to stay within max_ids
    expired: int = 0


class _Entry:
    """One id's last write: `packed` holds the digests of `names`' values (8 bytes each, in
    the order of `names`), then the HubSpot id (one object for both: an entry is small)."""

    __slots__ = ("expires_at", "names", "packed", "tp")

    def __init__(
        self,
        tp: TopicPartition,
        names: tuple[str, ...],
        digests: list[int],
        hubspot_id: str,
        expires_at: float,
    ) -> None:
        self.tp, self.names, self.expires_at = tp, names, expires_at
        self.packed = struct.pack(f"<{len(digests)}q", *digests) + hubspot_id.encode()

    @property
    def hubspot_id(self) -> str:
        return self.packed[8 * len(self.names) :].decode()

    def digests(self) -> tuple[int, ...]:
        return struct.unpack_from(f"<{len(self.names)}q", self.packed)

    def written(self) -> dict[str, int]:
        """Property name -> digest of the value last written."""
        return dict(zip(self.names, self.digests(), strict=True))


class LastWritten:
    """The last written values of up to `max_ids` ids, each for up to `ttl_s` seconds."""

    def __init__(self, max_ids: int, ttl_s: float, clock: Clock) -> None:
        if max_ids < 1 or ttl_s <= 0:
            raise ValueError("max_ids must be at least 1 and ttl_s above 0")
        self._max_ids, self._ttl_s, self._clock = max_ids, ttl_s, clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._id_properties: dict[str, str] = {}  # shared by the keys
        self._partitions: dict[TopicPartition, TopicPartition] = {}  # shared by the entries
        self.counts = CacheCounts()

    def __len__(self) -> int:
        return len(self._entries)

    def compare(
        self, key: Key, tp: TopicPartition, properties: Mapping[str, str]
    ) -> Comparison | None:
        """Which of `properties` equal what was last written for `key` from partition `tp`;
        None when nothing valid is known (a miss)."""
        entry = self._valid(key, tp)
        if entry is None:
            self.counts.misses += 1
            return None
        self.counts.hits += 1
        self._entries.move_to_end(key)
        same = tuple(
            name
            for name, digest in zip(entry.names, entry.digests(), strict=True)
            if (value := properties.get(name)) is not None and hash(value) == digest
        )
        return Comparison(same, entry.hubspot_id)

    def remember(
        self, key: Key, tp: TopicPartition, written: Mapping[str, str], hubspot_id: str
    ) -> None:
        """HubSpot accepted `written` for `key` (events of `tp`), as record `hubspot_id`."""
        now = self._clock.monotonic()
        entry = self._valid(key, tp)
        digests = entry.written() if entry is not None else {}
        digests.update((name, hash(value)) for name, value in written.items())
        names = tuple(sorted(digests))
        expires_at = entry.expires_at if entry is not None else now + self._ttl_s
        self._entries[self._shared_key(key)] = _Entry(
            self._shared_tp(tp),
            self._shared_names(names),
            [digests[name] for name in names],
            hubspot_id,
            expires_at,
        )
        self._entries.move_to_end(key)
        self._evict(now)

    def forget(self, key: Key) -> None:
        """The id's last write failed or may have landed: nothing is known of it now."""
        self._entries.pop(key, None)

    def drop_partitions(self, partitions: set[TopicPartition]) -> int:
        """Forget every id written from `partitions` (they left); returns how many."""
        gone = [key for key, entry in self._entries.items() if entry.tp in partitions]
        for key in gone:
            del self._entries[key]
        return len(gone)

    def _valid(self, key: Key, tp: TopicPartition) -> _Entry | None:
        """The entry of `key` if it speaks for `tp` and has not expired; removes one that
        does not."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.tp == tp and self._clock.monotonic() < entry.expires_at:
            return entry
        del self._entries[key]
        if entry.tp == tp:
            self.counts.expired += 1
        return None

    def _evict(self, now: float) -> None:
        entries = self._entries
        while len(entries) > self._max_ids:
            entries.popitem(last=False)
            self.counts.evicted += 1
        for _ in range(_EXPIRED_PER_WRITE):
            oldest = next(iter(entries.values()), None)
            if oldest is None or now < oldest.expires_at:
                return
            entries.popitem(last=False)
            self.counts.expired += 1

    def _shared_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        table = self._names
        shared = table.get(names)
        if shared is None:
            if len(table) >= _NAMES_TABLE_MAX:
                table.clear()  # entries keep theirs; sharing starts over for new ones
            shared = table[names] = names
        return shared

    def _shared_key(self, key: Key) -> Key:
        id_property = self._id_properties.setdefault(key[0], key[0])
        return key if id_property is key[0] else (id_property, key[1])

    def _shared_tp(self, tp: TopicPartition) -> TopicPartition:
        return self._partitions.setdefault(tp, tp)
