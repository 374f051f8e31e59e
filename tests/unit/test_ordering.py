from __future__ import annotations

from service.core.ordering import InOrderRelease

TP = ("t", 0)


def test_outcomes_are_released_only_in_offset_order() -> None:
    release: InOrderRelease[str] = InOrderRelease()
    for offset in (4, 5, 9):
        release.consumed(TP, offset)
    assert release.ready(TP, 9, "c") == []
    assert release.ready(TP, 5, "b") == []
    assert release.held() == 2
    assert release.ready(TP, 4, "a") == ["a", "b", "c"]
    assert release.held() == 0


def test_a_forgotten_partition_releases_nothing() -> None:
    release: InOrderRelease[str] = InOrderRelease()
    release.consumed(TP, 1)
    release.forget(TP)
    assert release.ready(TP, 1, "a") == []
