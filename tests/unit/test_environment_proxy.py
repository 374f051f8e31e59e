from __future__ import annotations

import httpx
import pytest

from service.adapters.hubspot import environment_proxy

HUBSPOT = httpx.URL("https://api.hubapi.com/crm/v3/objects/subscriptions/batch/upsert")


@pytest.fixture(autouse=True)
def _clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_no_proxy_variables_means_a_direct_connection() -> None:
    assert environment_proxy(HUBSPOT) is None


def test_the_scheme_s_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://other:3128")
    assert environment_proxy(HUBSPOT) == "http://proxy.internal:3128"


def test_all_proxy_applies_when_the_scheme_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:3128")
    assert environment_proxy(HUBSPOT) == "http://all.internal:3128"


def test_no_proxy_exempts_matching_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.hubapi.com")
    assert environment_proxy(HUBSPOT) is None
    assert environment_proxy(httpx.URL("https://example.com/x")) == "http://proxy.internal:3128"
