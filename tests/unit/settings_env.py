"""The environment start-up reads, for the tests of settings: only the required settings set
(`required_env`, which each module's `env` fixture returns), and the one line a bad value
stops start-up with (`problem`)."""

from __future__ import annotations

import pytest

from service.core.errors import ConfigError
from service.entry.settings import Settings, check_files, load_settings

SECRET = "pat-na1-secret"
REQUIRED = {
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
    "HUBSPOT_ID_PROPERTY": "external_subscription_id",
    "HUBSPOT_ACCESS_TOKEN": SECRET,
}


def required_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting from the caller's environment; the required ones set."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def problem(env: pytest.MonkeyPatch, **values: str) -> str:
    """The one line start-up stops with once `values` are set too (never the token)."""
    for name, value in values.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        check_files(load_settings())
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    return message
