from __future__ import annotations

from service.core.batching import Batcher, BatchLimits
from service.core.codec import decode_event
from service.core.ids import MERGED_PREFIX
from service.core.model import Event
from tests.unit.factories import LIMITS, event, raw


def test_duplicate_ids_in_one_window_become_one_input_with_later_properties_winning() -> None:
    batcher = Batcher(BatchLimits(max_size=10, max_wait_s=1.0))
    batcher.add(event("a", 1, hs_name="Old", hs_status="active"), now=0.0)
    batcher.add(event("b", 2, hs_name="B"), now=0.1)
    batcher.add(event("a", 3, hs_status="canceled"), now=0.2)
    batch = batcher.take(now=1.0)
    assert batch is not None
    assert [item.id for item in batch.inputs] == ["a", "b"]
    merged = batch.inputs[0]
    assert merged.properties == {"hs_name": "Old", "hs_status": "canceled"}
    assert [e.raw.offset for e in merged.events] == [1, 3]
    assert merged.trace_id.startswith(MERGED_PREFIX)
    assert batcher.coalesced_events == 1


def test_merged_trace_id_is_the_same_for_the_same_events() -> None:
    traces = []
    for _ in range(2):
        batcher = Batcher(BatchLimits(max_size=10, max_wait_s=0))
        batcher.add(event("a", 1, x="1"), now=0)
        batcher.add(event("a", 2, x="2"), now=0)
        batch = batcher.take(now=0)
        assert batch is not None
        traces.append(batch.inputs[0].trace_id)
    assert traces[0] == traces[1]


def test_batch_is_not_sent_before_it_is_full_or_its_oldest_event_has_waited() -> None:
    batcher = Batcher(BatchLimits(max_size=3, max_wait_s=1.0))
    batcher.add(event("a", 1), now=0.0)
    batcher.add(event("b", 2), now=0.5)
    assert batcher.take(now=0.99) is None
    assert batcher.next_deadline() == 1.0
    batch = batcher.take(now=1.0)
    assert batch is not None and len(batch.inputs) == 2


def test_full_batch_leaves_at_once_and_holds_at_most_max_size_inputs() -> None:
    batcher = Batcher(BatchLimits(max_size=3, max_wait_s=60))
    for n in range(7):
        batcher.add(event(f"id-{n}", n), now=0.0)
    first = batcher.take(now=0.0)
    second = batcher.take(now=0.0)
    assert first is not None and second is not None
    assert [i.id for i in first.inputs] == ["id-0", "id-1", "id-2"]
    assert [i.id for i in second.inputs] == ["id-3", "id-4", "id-5"]
    assert batcher.take(now=0.0) is None


def test_an_id_in_flight_holds_back_its_later_events_but_not_other_ids() -> None:
    batcher = Batcher(BatchLimits(max_size=10, max_wait_s=0))
    batcher.add(event("a", 1, v="1"), now=0)
    first = batcher.take(now=0)
    assert first is not None
    batcher.add(event("a", 2, v="2"), now=0)
    batcher.add(event("b", 3, v="3"), now=0)
    batcher.add(event("a", 4, v="4"), now=0)
    second = batcher.take(now=0)
    assert second is not None
    assert [i.id for i in second.inputs] == ["b"]
    batcher.release(first)
    third = batcher.take(now=0)
    assert third is not None
    assert [i.id for i in third.inputs] == ["a"]
    assert third.inputs[0].properties == {"v": "4"}
    assert [e.raw.offset for e in third.inputs[0].events] == [2, 4]


def test_byte_cap_cuts_a_batch_short() -> None:
    batcher = Batcher(BatchLimits(max_size=100, max_wait_s=0, max_bytes=2_500))
    for n in range(5):
        batcher.add(event(f"id-{n}", n, blob="x" * 1_000), now=0)
    sizes = []
    while (batch := batcher.take(now=0)) is not None:
        sizes.append(len(batch.inputs))
    assert sizes == [2, 2, 1]


def test_dropping_a_partition_forgets_only_its_waiting_events() -> None:
    batcher = Batcher(BatchLimits(max_size=10, max_wait_s=0))
    batcher.add(event("a", 1, partition=0), now=0)
    dropped = event("b", 1, partition=1)
    batcher.add(dropped, now=0)
    assert batcher.drop_partitions({("subscription-events", 1)}) == dropped.raw.size
    batch = batcher.take(now=0)
    assert batch is not None and [i.id for i in batch.inputs] == ["a"]
    assert batcher.buffered_events == 0


def _traced(event_id: str, offset: int, trace_id: str) -> Event:
    body = {"id": event_id, "objectWriteTraceId": trace_id, "properties": {"hs_name": event_id}}
    decoded = decode_event(raw(body, offset), LIMITS)
    assert isinstance(decoded, Event)
    return decoded


def test_inputs_that_share_a_trace_id_never_go_in_one_batch() -> None:
    # Upstream gave two subscriptions one trace id; so do two coalesced inputs whose events
    # carry the same trace ids. One request could not tell their replies apart.
    batcher = Batcher(BatchLimits(max_size=10, max_wait_s=0))
    batcher.add(_traced("a", 1, "T"), now=0)
    batcher.add(_traced("b", 2, "T"), now=0)
    batcher.add(_traced("c", 3, "U"), now=0)
    for offset, event_id in ((4, "c"), (5, "d"), (6, "d")):
        batcher.add(_traced(event_id, offset, "V"), now=0)  # c: [U, V]; d: [V, V]
    batcher.add(_traced("e", 7, "U"), now=0)
    batcher.add(_traced("e", 8, "V"), now=0)  # e: [U, V], as c

    first = batcher.take(now=0)
    assert first is not None
    assert [item.id for item in first.inputs] == ["a", "c", "d"]
    second = batcher.take(now=0)
    assert second is not None
    assert [item.id for item in second.inputs] == ["b", "e"]
    for batch in (first, second):
        traces = [item.trace_id for item in batch.inputs]
        assert len(traces) == len(set(traces))
    assert batcher.take(now=0, force=True) is None


def test_a_trace_id_shared_by_many_ids_does_not_make_every_take_scan_them_all() -> None:
    batcher = Batcher(BatchLimits(max_size=3, max_wait_s=0))
    for n in range(50):
        batcher.add(_traced(f"id-{n}", n, "T"), now=0)
    batcher.add(_traced("other", 50, "U"), now=0)
    taken = []
    while (batch := batcher.take(now=0, force=True)) is not None:
        taken.append([item.id for item in batch.inputs])
    assert taken[0] == ["id-0"]  # three repeats seen: the scan stops before "other"
    assert sorted(i for ids in taken for i in ids) == sorted(
        [f"id-{n}" for n in range(50)] + ["other"]
    )
