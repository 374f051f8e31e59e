"""What a redriven event carries: its own headers (those the dead letter added removed, an
upstream's own `error.*`/`source.*` kept) and its source partition."""

from __future__ import annotations

from service.core.model import ErrorInfo, RawMessage, Status
from service.core.records import Topics, dead_letter
from service.entry.redrive import republished_headers, source_partition

TOPICS = Topics(output="results", dlq="dlq")
OWN = [("source.system", b"billing"), ("error.code", b"E1"), ("trace", b"t-1")]


def _dead_letter_headers(
    own: list[tuple[str, bytes]], http_status: int | None
) -> list[tuple[str, bytes | None]]:
    raw = RawMessage("events", 2, 41, b"a", b"{}", list(own))
    error = ErrorInfo(category="VALIDATION_ERROR", message="bad", http_status=http_status)
    record = dead_letter(raw, Status.FAILED, error, TOPICS)
    assert record.headers is not None
    return list(record.headers)


def test_only_the_headers_the_dead_letter_added_are_removed() -> None:
    for http_status in (None, 400):
        headers = _dead_letter_headers(OWN, http_status)
        assert republished_headers(headers) == [*OWN, ("redrive.count", b"1")]


def test_a_second_redrive_counts_on_and_keeps_one_count() -> None:
    once = [
        (key, bytes(value, "utf-8") if isinstance(value, str) else value)
        for key, value in republished_headers(_dead_letter_headers(OWN, 400))
    ]
    again = _dead_letter_headers(once, None)
    assert republished_headers(again) == [*OWN, ("redrive.count", b"2")]


def test_headers_without_the_dead_letter_block_are_kept_whole() -> None:
    assert republished_headers(list(OWN)) == [*OWN, ("redrive.count", b"1")]


def test_the_event_goes_back_to_its_source_partition_when_that_still_exists() -> None:
    headers = _dead_letter_headers(OWN, None)
    assert source_partition(headers, "events", partitions=3) == 2
    assert source_partition(headers, "events", partitions=2) is None  # the topic shrank?
    assert source_partition(headers, "other-input", partitions=3) is None
    assert source_partition(list(OWN), "events", partitions=3) is None
