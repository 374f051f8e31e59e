"""Pytest plumbing for tests that need a real Jaeger (loaded from tests/conftest.py).

Fixtures (the local Jaeger starts lazily, in well under a second, only in a session with a
test that asks for one, and stops when the session ends):

* ``jaeger`` (session) -> :class:`~devstack.jaeger.JaegerEndpoints`: the OTLP gRPC and HTTP
  base URLs (as ``OTEL_EXPORTER_OTLP_ENDPOINT`` takes them) and the query URL, with
  ``.query()`` for reading traces back. ``JAEGER_QUERY_URL_FOR_TESTS`` (e.g.
  ``http://HOST:16686``) names an existing Jaeger instead; its OTLP endpoints are then
  ``JAEGER_OTLP_GRPC_ENDPOINT_FOR_TESTS`` and ``JAEGER_OTLP_HTTP_ENDPOINT_FOR_TESTS``, by default
  the query URL's host on 4317 and 4318.
* ``local_jaeger`` (session) -> ``LocalJaeger | None``: the local one, or ``None`` when an
  external Jaeger is used.

The local Jaeger's binary is built once with ``python -m devstack.jaeger build`` (``.ci/run``
does it; minutes the first time), never by a test: without it these tests fail under CI=true
and are skipped elsewhere, with the command to run. Every test that uses a fixture here gets
the ``jaeger`` marker (``-m "not jaeger"`` deselects them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from devstack.jaeger import JaegerEndpoints, LocalJaeger, binary_path

QUERY_URL_ENV = "JAEGER_QUERY_URL_FOR_TESTS"
OTLP_GRPC_ENV = "JAEGER_OTLP_GRPC_ENDPOINT_FOR_TESTS"
OTLP_HTTP_ENV = "JAEGER_OTLP_HTTP_ENDPOINT_FOR_TESTS"
JAEGER_FIXTURES = frozenset({"jaeger", "local_jaeger"})
JAEGER_START_TIMEOUT_S = 60.0


def _external() -> JaegerEndpoints | None:
    query_url = os.environ.get(QUERY_URL_ENV)
    if not query_url:
        return None
    host = urlsplit(query_url).hostname or "localhost"
    return JaegerEndpoints(
        otlp_grpc=os.environ.get(OTLP_GRPC_ENV) or f"http://{host}:4317",
        otlp_http=os.environ.get(OTLP_HTTP_ENV) or f"http://{host}:4318",
        query_url=query_url.rstrip("/"),
    )


def require_jaeger_binary() -> None:
    """Return if the binary is built; else fail under CI=true and skip elsewhere."""
    if binary_path().is_file():
        return
    message = (
        f"Jaeger is not built ({binary_path()} is missing): run "
        "`.venv/bin/python -m devstack.jaeger build` (about 9 minutes the first time)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI requires it (.ci/run builds it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def local_jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalJaeger | None]:
    """The session's local Jaeger, or ``None`` when ``JAEGER_QUERY_URL_FOR_TESTS`` is set."""
    if _external() is not None:
        yield None
        return
    require_jaeger_binary()
    jaeger = LocalJaeger(tmp_path_factory.mktemp("jaeger"))
    jaeger.start(timeout_s=JAEGER_START_TIMEOUT_S)
    try:
        yield jaeger
    finally:
        jaeger.stop()


@pytest.fixture(scope="session")
def jaeger(local_jaeger: LocalJaeger | None) -> JaegerEndpoints:
    """Where the tests send spans (OTLP) and read traces back (query API)."""
    external = _external()
    if external is not None:
        return external
    assert local_jaeger is not None
    return local_jaeger.endpoints


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Jaeger fixture with ``jaeger``."""
    for item in items:
        if JAEGER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.jaeger)
