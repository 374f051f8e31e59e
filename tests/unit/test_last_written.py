"""The SKIP_UNCHANGED cache (service/core/last_written.py): what it says is unchanged, and how
long and for whom it remembers."""

from __future__ import annotations

from service.core.clock import FakeClock
from service.core.last_written import LastWritten

KEY = ("external_subscription_id", "sub-1")
TP = ("subscription-events", 0)
OTHER_TP = ("subscription-events", 1)
DAY_S = 86_400.0


def _cache(max_ids: int = 100, ttl_s: float = DAY_S) -> tuple[LastWritten, FakeClock]:
    clock = FakeClock()
    return LastWritten(max_ids, ttl_s, clock), clock


def test_equal_values_are_the_same_and_any_other_value_is_not() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"hs_status": "active", "hs_amount": "10.0", "hs_note": ""}, "51")
    same = cache.compare(KEY, TP, {"hs_status": "active", "hs_amount": "10.0", "hs_note": ""})
    assert same is not None
    assert sorted(same.same) == ["hs_amount", "hs_note", "hs_status"]
    assert same.hubspot_id == "51"
    other = cache.compare(KEY, TP, {"hs_status": "Active", "hs_amount": "10", "hs_note": " "})
    assert other is not None and other.same == ()


def test_a_partial_change_names_only_the_equal_properties() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"a": "1", "b": "2", "c": "3"}, "51")
    found = cache.compare(KEY, TP, {"a": "1", "b": "changed", "d": "never written"})
    assert found is not None and found.same == ("a",)


def test_a_later_write_merges_into_what_is_known_and_gives_the_latest_hubspot_id() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"a": "1", "b": "2"}, "51")
    cache.remember(KEY, TP, {"b": "3", "c": "4"}, "52")
    found = cache.compare(KEY, TP, {"a": "1", "b": "3", "c": "4"})
    assert found is not None and found.same == ("a", "b", "c") and found.hubspot_id == "52"


def test_nothing_is_known_of_an_id_never_written() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"a": "1"}, "51")
    assert cache.compare(("external_subscription_id", "sub-2"), TP, {"a": "1"}) is None
    assert cache.compare(("other_id_property", "sub-1"), TP, {"a": "1"}) is None
    assert (cache.counts.hits, cache.counts.misses) == (0, 2)


def test_an_entry_expires_ttl_after_the_write_that_started_it() -> None:
    cache, clock = _cache(ttl_s=100.0)
    cache.remember(KEY, TP, {"a": "1"}, "51")
    clock.advance(60)
    cache.remember(KEY, TP, {"b": "2"}, "51")  # merged: does not extend the entry
    clock.advance(39.9)
    assert cache.compare(KEY, TP, {"a": "1", "b": "2"}) is not None
    clock.advance(0.1)
    assert cache.compare(KEY, TP, {"a": "1", "b": "2"}) is None
    assert len(cache) == 0 and cache.counts.expired == 1


def test_a_write_after_expiry_starts_a_new_entry_with_only_what_it_wrote() -> None:
    cache, clock = _cache(ttl_s=100.0)
    cache.remember(KEY, TP, {"a": "1", "b": "2"}, "51")
    clock.advance(100)
    cache.remember(KEY, TP, {"b": "2"}, "51")
    found = cache.compare(KEY, TP, {"a": "1", "b": "2"})
    assert found is not None and found.same == ("b",)
    clock.advance(99)
    assert cache.compare(KEY, TP, {"b": "2"}) is not None  # a fresh TTL


def test_expired_entries_leave_from_the_least_recently_used_end_as_others_are_written() -> None:
    cache, clock = _cache(ttl_s=100.0)
    for n in range(3):
        cache.remember(("p", f"old-{n}"), TP, {"a": "1"}, "1")
    clock.advance(100)
    cache.remember(("p", "new"), TP, {"a": "1"}, "2")
    assert len(cache) == 1 and cache.counts.expired == 3


def test_the_least_recently_used_id_is_evicted_beyond_max_ids() -> None:
    cache, _ = _cache(max_ids=2)
    cache.remember(("p", "a"), TP, {"x": "1"}, "1")
    cache.remember(("p", "b"), TP, {"x": "1"}, "2")
    assert cache.compare(("p", "a"), TP, {"x": "1"}) is not None  # "a" used: "b" is older now
    cache.remember(("p", "c"), TP, {"x": "1"}, "3")
    assert len(cache) == 2 and cache.counts.evicted == 1
    assert cache.compare(("p", "b"), TP, {"x": "1"}) is None
    assert cache.compare(("p", "a"), TP, {"x": "1"}) is not None
    assert cache.compare(("p", "c"), TP, {"x": "1"}) is not None


def test_a_forgotten_id_is_unknown() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"a": "1"}, "51")
    cache.forget(KEY)
    cache.forget(("p", "never written"))
    assert cache.compare(KEY, TP, {"a": "1"}) is None and len(cache) == 0


def test_dropping_partitions_forgets_exactly_the_ids_written_from_them() -> None:
    cache, _ = _cache()
    written = [(("p", f"id-{n}"), (TP, OTHER_TP)[n % 2]) for n in range(4)]
    for key, tp in written:
        cache.remember(key, tp, {"a": "1"}, "51")
    assert cache.drop_partitions({OTHER_TP}) == 2
    known = [key for key, tp in written if cache.compare(key, tp, {"a": "1"}) is not None]
    assert known == [("p", "id-0"), ("p", "id-2")]


def test_an_entry_speaks_only_for_events_of_its_partition() -> None:
    cache, _ = _cache()
    cache.remember(KEY, TP, {"a": "1"}, "51")
    assert cache.compare(KEY, OTHER_TP, {"a": "1"}) is None
    assert cache.compare(KEY, TP, {"a": "1"}) is None  # gone: the other partition may write it


def test_entries_with_the_same_property_names_share_them() -> None:
    cache, _ = _cache()
    cache.remember(("p", "a"), TP, {"x": "1", "y": "2"}, "1")
    cache.remember(("p", "b"), TP, {"y": "3", "x": "4"}, "2")
    entries = list(cache._entries.values())
    assert entries[0].names == ("x", "y") and entries[0].names is entries[1].names
