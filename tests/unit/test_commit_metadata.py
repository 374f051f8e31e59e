"""Offsets finished past a commit position travel in the commit's metadata, so that the
partition's next owner does not redo them (no duplicate results after a hand-over)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from service.core import commit_metadata
from service.core.offsets import DONE_BEFORE, NEW, CommitPoint, OffsetTracker

TP = ("t", 0)


@given(
    position=st.integers(min_value=0, max_value=2**53),
    finished=st.sets(st.integers(min_value=1, max_value=5_000), max_size=300),
)
def test_finished_offsets_round_trip_through_the_metadata(
    position: int, finished: set[int]
) -> None:
    offsets = {position + n for n in finished}
    text = commit_metadata.encode(position, offsets, max_bytes=1_000_000)
    assert commit_metadata.decode(position, text) == offsets
    assert (text == "") == (not offsets)


def test_offsets_at_or_below_the_position_are_not_recorded() -> None:
    text = commit_metadata.encode(100, [98, 100, 103])
    assert commit_metadata.decode(100, text) == {103}


def test_metadata_written_for_another_position_or_corrupt_says_nothing() -> None:
    text = commit_metadata.encode(100, [101, 102])
    assert commit_metadata.decode(101, text) == set()  # committed again by an older client
    assert commit_metadata.decode(100, text[:-3] + "!!!") == set()
    assert commit_metadata.decode(100, "someone else's metadata") == set()
    assert commit_metadata.decode(100, None) == set()


def test_too_much_for_the_cap_keeps_the_nearest_finished_offsets() -> None:
    rng = random.Random(7)
    finished = sorted(rng.sample(range(1, 200_000), 20_000))  # scattered: compresses badly
    text = commit_metadata.encode(0, finished, max_bytes=4_096)
    assert 0 < len(text.encode()) <= 4_096
    kept = commit_metadata.decode(0, text)
    assert kept and kept == set(finished[: len(kept)])  # a prefix: the nearest ones


def test_a_dense_run_of_finished_offsets_is_tiny() -> None:
    text = commit_metadata.encode(1_000, range(1_002, 21_000))
    assert len(text) < 40
    assert commit_metadata.decode(1_000, text) == set(range(1_002, 21_000))


def test_the_tracker_commits_what_finished_past_the_position() -> None:
    tracker = OffsetTracker()
    for offset in range(10):
        tracker.consumed(TP, offset)
    progress = tracker.progress(TP)
    assert progress is not None
    for offset in (3, 4, 7):
        progress.finish(offset)
    point = tracker.commit_points()[TP]
    assert point.offset == 0
    assert commit_metadata.decode(0, point.metadata) == {3, 4, 7}
    tracker.mark_committed({TP: point})
    assert tracker.commit_points() == {}
    progress.finish(8)  # the position stays, the finished set grows: committed again
    assert commit_metadata.decode(0, tracker.commit_points()[TP].metadata) == {3, 4, 7, 8}


def test_a_new_owner_skips_what_the_commit_marks_finished_and_keeps_it_marked() -> None:
    tracker = OffsetTracker()
    tracker.assign(TP, CommitPoint(50, commit_metadata.encode(50, [52, 53, 60])))
    # Before reading anything, its own commit still carries the previous owner's record.
    assert tracker.commit_points() == {}
    states = [tracker.consumed(TP, offset) for offset in (50, 51, 52, 53, 54)]
    assert states == [NEW, NEW, DONE_BEFORE, DONE_BEFORE, NEW]
    point = tracker.commit_points()[TP]
    assert point.offset == 50
    assert commit_metadata.decode(50, point.metadata) == {52, 53, 60}
    progress = tracker.progress(TP)
    assert progress is not None
    for offset in (50, 51, 54):
        progress.finish(offset)
    point = tracker.commit_points()[TP]
    assert point.offset == 55
    assert commit_metadata.decode(55, point.metadata) == {60}
