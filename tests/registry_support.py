"""Pytest plumbing for tests that need a real Schema Registry (loaded from tests/conftest.py).

Fixtures (each starts the local registry lazily: only a session with a test that asks for one
pays the start, about 5 s, and the registry is stopped when the session ends):

* ``schema_registry_url`` (session) -> ``str``: the Confluent-compatible base URL that
  confluent-kafka's ``SchemaRegistryClient`` takes. ``SCHEMA_REGISTRY_URL_FOR_TESTS`` names an
  existing registry instead (for Apicurio ``http://HOST:PORT/apis/ccompat/v7``, for Confluent's
  own ``http://HOST:PORT``); else a :class:`~devstack.registry.LocalRegistry` is started once
  per session in a temporary directory.
* ``schema_registry`` (session) -> ``SchemaRegistryClient`` for that URL.
* ``local_registry`` (session) -> ``LocalRegistry | None``: that registry, or ``None`` when an
  external one is used.
* ``restartable_registry`` (function) -> ``LocalRegistry``: the session registry for a test that
  stops, kills or restarts it (its storage survives a restart, on the same port); skips with
  an external registry, and makes sure the registry runs again after the test.
* ``subject_name`` (function) -> ``str``: a subject unique to the test.

Every test that uses one of these gets the ``schema_registry`` marker, so
``-m "not schema_registry"`` deselects them. Schema ids are the registry's own: never assert
exact numbers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from devstack.registry import LocalRegistry

REGISTRY_URL_ENV = "SCHEMA_REGISTRY_URL_FOR_TESTS"
REGISTRY_FIXTURES = frozenset(
    {
        "schema_registry",
        "schema_registry_url",
        "local_registry",
        "restartable_registry",
        "subject_name",
    }
)
REGISTRY_START_TIMEOUT_S = 120.0


def _external_url() -> str | None:
    return os.environ.get(REGISTRY_URL_ENV) or None


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry | None]:
    """The session's local registry, or ``None`` when ``SCHEMA_REGISTRY_URL_FOR_TESTS`` is set."""
    if _external_url() is not None:
        yield None
        return
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start(timeout_s=REGISTRY_START_TIMEOUT_S)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def schema_registry_url(local_registry: LocalRegistry | None) -> str:
    """The Confluent-compatible URL of the registry the tests use."""
    external = _external_url()
    if external is not None:
        return external.rstrip("/")
    assert local_registry is not None
    return local_registry.url


@pytest.fixture(scope="session")
def schema_registry(schema_registry_url: str) -> SchemaRegistryClient:
    """A confluent-kafka client of the session's registry."""
    return SchemaRegistryClient({"url": schema_registry_url})


@pytest.fixture
def restartable_registry(local_registry: LocalRegistry | None) -> Iterator[LocalRegistry]:
    """The session registry for a test that stops, kills or restarts it; running afterwards."""
    if local_registry is None:
        pytest.skip(f"{REGISTRY_URL_ENV} names an external registry; it cannot be restarted here")
    local_registry.ensure_running(REGISTRY_START_TIMEOUT_S)
    yield local_registry
    local_registry.ensure_running(REGISTRY_START_TIMEOUT_S)


@pytest.fixture
def subject_name(request: pytest.FixtureRequest) -> str:
    """A subject unique to this test: ``<test name>-<uuid>-value``."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:12]}-value"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a registry fixture with ``schema_registry``."""
    for item in items:
        if REGISTRY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.schema_registry)
