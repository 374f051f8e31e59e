"""Consumer lag from librdkafka's statistics: counted from the service's own commits."""

from __future__ import annotations

from typing import Any

from service.adapters.kafka import _partition_ends


def _partition(**fields: Any) -> dict[str, Any]:
    stats = {
        "fetch_state": "active",
        "lo_offset": 10,
        "hi_offset": 500,
        "ls_offset": 480,
        "committed_offset": 200,
        "consumer_lag": 280,
    }
    stats.update(fields)
    return stats


def test_the_end_is_the_last_stable_offset_a_read_committed_consumer_reads_to() -> None:
    ends = _partition_ends(_partition())
    assert ends is not None
    assert (ends.end, ends.committed, ends.start) == (480, 200, 10)


def test_without_a_last_stable_offset_the_high_watermark_is_the_end() -> None:
    ends = _partition_ends(_partition(ls_offset=-1))
    assert ends is not None and ends.end == 500


def test_a_group_that_never_committed_counts_from_the_partitions_start() -> None:
    ends = _partition_ends(_partition(committed_offset=-1001))
    assert ends is not None and ends.committed is None and ends.start == 10


def test_partitions_not_being_fetched_are_not_reported() -> None:
    for state in ("none", "stopping", "stopped"):
        assert _partition_ends(_partition(fetch_state=state)) is None
    assert _partition_ends(_partition(lo_offset=-1, hi_offset=-1, ls_offset=-1)) is None
