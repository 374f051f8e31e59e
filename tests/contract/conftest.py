"""Every contract test runs twice: against the in-memory fakes and against the real adapters
on the session's Kafka broker (marked `kafka`; `-m "not kafka"` leaves the fakes' run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.backends import Backend, FakeBackend, KafkaBackend
from tests.kafka_support import TopicFactory


@pytest.fixture(params=["fake", pytest.param("kafka", marks=pytest.mark.kafka)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    chosen: Backend
    if request.param == "fake":
        chosen = FakeBackend()
    else:
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        topics: TopicFactory = request.getfixturevalue("topic_factory")
        chosen = KafkaBackend(bootstrap, topics)
    try:
        yield chosen
    finally:
        chosen.close()
