from kafkabridge.consumer.offsets import OffsetTracker

P0 = ("orders", 0)
P1 = ("orders", 1)


def test_nothing_is_committable_before_anything_is_done() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 10)
    assert tracker.committable() == {}


def test_the_committable_offset_is_one_past_the_last_contiguous_done_message() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.track(P0, offset)
    tracker.mark_done(P0, 10)
    assert tracker.committable() == {P0: 11}


def test_out_of_order_completion_never_commits_past_an_unfinished_message() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.track(P0, offset)
    tracker.mark_done(P0, 7)
    tracker.mark_done(P0, 6)
    assert tracker.committable() == {}
    tracker.mark_done(P0, 5)
    assert tracker.committable() == {P0: 8}
    assert tracker.in_flight(P0) == 0


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 1)
    tracker.track(P1, 100)
    tracker.mark_done(P1, 100)
    assert tracker.committable() == {P1: 101}


def test_committed_offsets_are_not_offered_again_until_they_move() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 1)
    tracker.mark_done(P0, 1)
    tracker.committed(tracker.committable())
    assert tracker.committable() == {}
    tracker.track(P0, 2)
    tracker.mark_done(P0, 2)
    assert tracker.committable() == {P0: 3}


def test_forgotten_partitions_offer_nothing_and_ignore_late_completions() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 1)
    tracker.forget([P0])
    tracker.mark_done(P0, 1)
    assert tracker.committable() == {}


def test_a_partition_assigned_again_after_it_was_forgotten_starts_over_from_what_it_consumes() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 1)
    tracker.mark_done(P0, 1)
    tracker.forget([P0])
    tracker.track(P0, 7)
    tracker.mark_done(P0, 7)
    assert tracker.committable() == {P0: 8}
