"""What the loop relies on the event source for, true of the fake and of KafkaSource alike."""

from __future__ import annotations

import time
import uuid

from service.core.offsets import CommitPoint
from tests.contract.backends import Backend, Produced
from tests.contract.support import RecordingListener, by_partition, count, poll_for, poll_until


def _group() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def test_each_partition_comes_in_offset_order_with_key_value_headers_and_timestamp(
    backend: Backend,
) -> None:
    topic = backend.topic(partitions=2)
    written = [
        Produced(p, f"k{p}{n}".encode(), f"v{p}{n}".encode(), [("h", b"%d" % n)] if n else None)
        for n in range(5)
        for p in (0, 1)
    ]  # the first of each partition without headers
    before_ms = int(time.time() * 1000)
    backend.produce(topic, written)
    source, listener = backend.source(topic, _group()), RecordingListener()
    source.subscribe(listener)
    first = poll_until(source, count(1), backend.patience_s)
    assert {(topic, m.partition) for m in first} <= listener.held  # assigned before handed over
    seen = first + poll_until(source, count(10 - len(first)), backend.patience_s)
    assert by_partition(seen) == {0: [0, 1, 2, 3, 4], 1: [0, 1, 2, 3, 4]}
    by_place = {(m.partition, m.offset): m for m in seen}
    for n in range(5):
        for p in (0, 1):
            message, sent = by_place[(p, n)], written[2 * n + p]
            assert message.topic == topic
            assert (message.key, message.value, message.headers) == sent[1:]
            assert message.timestamp_ms is not None
            assert before_ms - 60_000 <= message.timestamp_ms <= time.time() * 1000 + 60_000


def test_a_commit_keeps_its_metadata_and_the_groups_next_member_starts_there(
    backend: Backend,
) -> None:
    topic, group = backend.topic(partitions=2), _group()
    p0, p1 = (topic, 0), (topic, 1)
    backend.produce(topic, [Produced(0, None, f"{n}".encode()) for n in range(5)])
    first = backend.source(topic, group)
    first.subscribe(RecordingListener())
    poll_until(first, count(5), backend.patience_s)
    assert first.committed([p0, p1]) == {}  # nothing committed yet: left out
    first.commit({p0: CommitPoint(3, "finished past 3")})
    assert first.committed([p0, p1]) == {p0: CommitPoint(3, "finished past 3")}
    first.commit({p0: CommitPoint(2)})
    assert first.committed([p0, p1]) == {p0: CommitPoint(2, "")}
    first.close()
    second, listener = backend.source(topic, group), RecordingListener()
    second.subscribe(listener)
    seen = poll_until(second, count(3), backend.patience_s)
    assert by_partition(seen) == {0: [2, 3, 4]}
    assert second.committed([p0]) == {p0: CommitPoint(2, "")}


def test_a_paused_partition_hands_nothing_over_until_it_is_resumed(backend: Backend) -> None:
    topic = backend.topic(partitions=2)
    p0 = (topic, 0)
    backend.produce(topic, [Produced(p, None, b"before") for p in (0, 1) for _ in range(3)])
    source = backend.source(topic, _group())
    source.subscribe(RecordingListener())
    poll_until(source, count(6), backend.patience_s)
    source.pause([p0])
    backend.produce(topic, [Produced(p, None, b"after") for p in (0, 1) for _ in range(3)])
    paused = poll_until(source, count(3), backend.patience_s)
    paused += poll_for(source, backend.quiet_s)
    assert by_partition(paused) == {1: [3, 4, 5]}  # the other partition goes on
    source.resume([p0])
    resumed = poll_until(source, count(3), backend.patience_s)
    resumed += poll_for(source, backend.quiet_s)
    assert by_partition(resumed) == {0: [3, 4, 5]}  # where it stopped: nothing skipped or again


def test_positions_are_the_next_offset_to_hand_over_and_negative_before_any(
    backend: Backend,
) -> None:
    topic = backend.topic(partitions=2)
    p0, p1 = (topic, 0), (topic, 1)
    backend.produce(topic, [Produced(0, None, b"x") for _ in range(3)])
    source = backend.source(topic, _group())
    source.subscribe(RecordingListener())
    poll_until(source, count(3), backend.patience_s)
    positions = source.positions([p0, p1])
    assert positions[p0] == 3
    assert positions.get(p1, -1) < 0  # nothing handed over from it: unknown


def test_the_listener_hears_of_every_partition_on_subscribe_and_of_their_revocation_on_close(
    backend: Backend,
) -> None:
    topic = backend.topic(partitions=3)
    every = [(topic, 0), (topic, 1), (topic, 2)]
    source, listener = backend.source(topic, _group()), RecordingListener()
    assert source.partition_count() == 3
    source.subscribe(listener)
    poll_until(source, lambda _: listener.held == set(every), backend.patience_s)
    assert listener.calls == [("assigned", every)]
    source.close()
    assert listener.calls == [("assigned", every), ("revoked", every)]
