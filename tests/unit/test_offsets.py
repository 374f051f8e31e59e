from __future__ import annotations

from service.offsets import OffsetTracker

TP = ("t", 0)


def test_commit_position_stops_at_the_first_unfinished_offset_whatever_the_completion_order() -> (
    None
):
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.consumed(TP, offset)
    tracker.outcome_published(TP, 12, 1)
    tracker.delivered(TP, 12)
    tracker.outcome_published(TP, 11, 2)
    tracker.delivered(TP, 11)
    assert tracker.commit_positions() == {TP: 10}
    tracker.outcome_published(TP, 10, 1)
    tracker.delivered(TP, 10)
    assert tracker.commit_positions() == {TP: 11}
    tracker.delivered(TP, 11)
    assert tracker.commit_positions() == {TP: 13}


def test_a_failed_event_is_unfinished_until_its_dead_letter_is_acknowledged() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 0)
    tracker.outcome_published(TP, 0, 2)
    tracker.delivered(TP, 0)
    assert tracker.commit_positions() == {TP: 0}
    tracker.delivered(TP, 0)
    assert tracker.commit_positions() == {TP: 1}


def test_unchanged_positions_are_not_committed_twice() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 5)
    tracker.outcome_published(TP, 5, 1)
    tracker.delivered(TP, 5)
    positions = tracker.commit_positions()
    tracker.mark_committed(positions)
    assert tracker.commit_positions() == {}


def test_gaps_in_offsets_do_not_block_the_watermark() -> None:
    tracker = OffsetTracker()
    for offset in (3, 7):
        tracker.consumed(TP, offset)
        tracker.outcome_published(TP, offset, 1)
        tracker.delivered(TP, offset)
    assert tracker.commit_positions() == {TP: 8}


def test_forgotten_partition_ignores_late_acknowledgements() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 0)
    tracker.forget(TP)
    tracker.outcome_published(TP, 0, 1)
    tracker.delivered(TP, 0)
    assert tracker.commit_positions() == {}
    assert tracker.unfinished() == 0
