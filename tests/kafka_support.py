"""Pytest plumbing for tests that need a real Kafka broker (loaded from tests/conftest.py).

Fixtures:

* ``kafka_bootstrap`` (session) -> ``str``: the cluster named by ``KAFKA_BOOTSTRAP_SERVERS`` when
  that is set, else a :class:`~devstack.kafka.broker.LocalBroker` started once per session in a
  temporary directory and stopped at the end.
* ``local_broker`` (session) -> ``LocalBroker | None``: that broker, or ``None`` when an external
  cluster is used. Tests that restart or kill it should rather use ``restartable_broker``.
* ``restartable_broker`` (function) -> ``LocalBroker``: the session broker for tests that restart,
  stop or kill it; skips with an external cluster, and makes sure the broker runs again after
  the test so later tests are unaffected.
* ``topic_factory`` (function) -> ``TopicFactory``: ``make(partitions=1, prefix="t",
  config=None)`` creates a topic unique to the test and returns its name.

Every test that uses one of these fixtures gets the ``kafka`` marker, so ``-m "not kafka"``
deselects them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Protocol

import pytest

from devstack.kafka.broker import LocalBroker, create_topics

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_FIXTURES = frozenset(
    {"kafka_bootstrap", "local_broker", "restartable_broker", "topic_factory"}
)
BROKER_START_TIMEOUT_S = 120.0


class TopicFactory(Protocol):
    """Creates a topic unique to the calling test and returns its name."""

    def __call__(
        self, partitions: int = 1, prefix: str = "t", config: Mapping[str, str] | None = None
    ) -> str: ...


def _external_bootstrap() -> str | None:
    return os.environ.get(BOOTSTRAP_ENV) or None


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker | None]:
    """The session's local broker, or ``None`` when ``KAFKA_BOOTSTRAP_SERVERS`` is set."""
    if _external_bootstrap() is not None:
        yield None
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"))
    broker.start(timeout_s=BROKER_START_TIMEOUT_S)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_broker: LocalBroker | None) -> str:
    """``host:port[,host:port]`` of the Kafka cluster the tests use."""
    external = _external_bootstrap()
    if external is not None:
        return external
    assert local_broker is not None
    return local_broker.bootstrap_servers


@pytest.fixture
def restartable_broker(local_broker: LocalBroker | None) -> Iterator[LocalBroker]:
    """The session broker for a test that restarts or kills it; running again afterwards."""
    if local_broker is None:
        pytest.skip(f"{BOOTSTRAP_ENV} names an external cluster; it cannot be restarted here")
    local_broker.ensure_running(BROKER_START_TIMEOUT_S)
    yield local_broker
    local_broker.ensure_running(BROKER_START_TIMEOUT_S)


def _topic_stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-")[:60] or "test"


@pytest.fixture
def topic_factory(
    kafka_bootstrap: str, local_broker: LocalBroker | None, request: pytest.FixtureRequest
) -> TopicFactory:
    """Create topics unique to this test (name: ``<prefix>-<test name>-<uuid>``)."""
    if local_broker is not None:
        local_broker.ensure_running(BROKER_START_TIMEOUT_S)  # an earlier test may have killed it
    stem = _topic_stem(request.node.name)

    def make(
        partitions: int = 1, prefix: str = "t", config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{_topic_stem(prefix)}-{stem}-{uuid.uuid4().hex[:12]}"
        create_topics(kafka_bootstrap, {name: partitions}, config)
        return name

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Kafka fixture with ``kafka``."""
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)
