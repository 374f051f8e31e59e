from __future__ import annotations

from service.core.offsets import OffsetTracker

TP = ("t", 0)


def _positions(tracker: OffsetTracker) -> dict[tuple[str, int], int]:
    """The commit positions due, without their metadata."""
    return {tp: point.offset for tp, point in tracker.commit_points().items()}


def _finish(tracker: OffsetTracker, offset: int) -> None:
    """Every record of the event at `offset` was acknowledged (as the publisher reports it)."""
    progress = tracker.progress(TP)
    assert progress is not None
    progress.finish(offset)


def test_commit_position_stops_at_the_first_unfinished_offset_whatever_the_completion_order() -> (
    None
):
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.consumed(TP, offset)
    _finish(tracker, 12)
    _finish(tracker, 11)
    assert _positions(tracker) == {TP: 10}
    assert tracker.unfinished() == 1
    _finish(tracker, 10)
    assert _positions(tracker) == {TP: 13}
    assert tracker.unfinished() == 0


def test_the_position_moves_offset_by_offset_in_order() -> None:
    tracker = OffsetTracker()
    for offset in range(3):
        tracker.consumed(TP, offset)
    assert _positions(tracker) == {TP: 0}
    _finish(tracker, 0)
    assert _positions(tracker) == {TP: 1}
    _finish(tracker, 1)
    assert _positions(tracker) == {TP: 2}


def test_unchanged_positions_are_not_committed_twice() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 5)
    _finish(tracker, 5)
    tracker.mark_committed(tracker.commit_points())
    assert _positions(tracker) == {}


def test_gaps_in_offsets_do_not_block_the_watermark() -> None:
    tracker = OffsetTracker()
    for offset in (3, 7):
        tracker.consumed(TP, offset)
    _finish(tracker, 7)
    assert _positions(tracker) == {TP: 3}
    _finish(tracker, 3)
    assert _positions(tracker) == {TP: 8}


def test_forgotten_partition_ignores_late_acknowledgements() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 0)
    progress = tracker.progress(TP)
    assert progress is not None
    tracker.forget(TP)
    progress.finish(0)
    assert _positions(tracker) == {}
    assert tracker.unfinished() == 0


def test_a_late_acknowledgement_does_not_finish_the_offset_read_again_after_reassignment() -> None:
    tracker = OffsetTracker()
    tracker.consumed(TP, 0)
    before_loss = tracker.progress(TP)
    assert before_loss is not None
    tracker.forget(TP)  # lost; the partition comes back and offset 0 is read again
    tracker.assign(TP)
    tracker.consumed(TP, 0)
    before_loss.finish(0)  # the first copy's records are acknowledged late
    assert tracker.unfinished() == 1
    assert _positions(tracker) == {TP: 0}


def test_a_caught_up_partition_moves_to_the_consumers_position_past_markers() -> None:
    # The consumer's position skips transaction markers; a partition with work unfinished
    # never moves past that work.
    tracker = OffsetTracker()
    tp, busy = ("t", 0), ("t", 1)
    for offset in range(3):
        tracker.consumed(tp, offset)
        tracker.consumed(busy, offset)
    progress, busy_progress = tracker.progress(tp), tracker.progress(busy)
    assert progress is not None and busy_progress is not None
    for offset in range(3):
        progress.finish(offset)
    busy_progress.finish(0)
    assert tracker.caught_up() == [tp]
    tracker.advance({tp: 4, busy: 4, ("t", 2): 9})
    assert _positions(tracker) == {tp: 4, busy: 1}
    tracker.advance({tp: -1001})
    assert _positions(tracker) == {tp: 4, busy: 1}
