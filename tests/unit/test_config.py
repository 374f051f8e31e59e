"""Settings that would pass start-up and then fail every request stop it with one line."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from service.adapters.kafka import (
    CONSUMER_OWNED,
    PRODUCER_OWNED,
    TransactionalKafkaSink,
    check_topics,
    consumer_config,
    producer_config,
    settings_refusals_as_config_errors,
)
from service.core.clock import SystemClock
from service.core.errors import ConfigError
from service.core.health import Health
from service.entry.app import (
    listen,
    pipeline_config,
    warn_if_a_revoke_can_outlast_the_poll_interval,
)
from service.entry.cli import main
from service.entry.kafka_clients import LIBRDKAFKA_LOGGER, kafka_common_config
from service.entry.settings import KAFKA_KEYS_THE_SERVICE_SETS, check_files, load_settings
from tests.unit.settings_env import problem, required_env


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return required_env(monkeypatch)


def test_a_token_with_a_trailing_newline_is_used_without_it(env: pytest.MonkeyPatch) -> None:
    env.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-secret\n")
    settings = load_settings()
    assert settings.hubspot_access_token is not None
    assert settings.hubspot_access_token.get_secret_value() == "pat-na1-secret"


def test_a_token_with_a_space_or_line_break_inside_is_refused(env: pytest.MonkeyPatch) -> None:
    for token in ("pat-na1 secret", "pat-na1\nsecret"):
        message = problem(env, HUBSPOT_ACCESS_TOKEN=token)
        assert "HUBSPOT_ACCESS_TOKEN: must be one token" in message
        assert "secret" not in message


def test_a_token_file_must_exist_and_hold_one_token(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.delenv("HUBSPOT_ACCESS_TOKEN")
    missing = tmp_path / "missing"
    assert "HUBSPOT_ACCESS_TOKEN_FILE" in problem(env, HUBSPOT_ACCESS_TOKEN_FILE=str(missing))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in problem(env, HUBSPOT_ACCESS_TOKEN_FILE=str(empty))
    two = tmp_path / "two-lines"
    two.write_text("pat-na1-secret\nsomething else\n")
    assert "must be one token" in problem(env, HUBSPOT_ACCESS_TOKEN_FILE=str(two))
    good = tmp_path / "token"
    good.write_text("pat-na1-secret\n")
    env.setenv("HUBSPOT_ACCESS_TOKEN_FILE", str(good))
    check_files(load_settings())


def test_a_missing_ca_bundle_or_kafka_certificate_is_named(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = str(tmp_path / "absent.pem")
    for name in ("HUBSPOT_CA_BUNDLE", "KAFKA_SSL_CA_LOCATION", "KAFKA_SASL_PASSWORD_FILE"):
        message = problem(env, **{name: absent})
        assert message == f"invalid configuration: {name}: {absent!r} is not a file"
        env.delenv(name)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HUBSPOT_API_VERSION", "V3", "HUBSPOT_API_VERSION"),
        ("HUBSPOT_API_VERSION", "crm/v3", "HUBSPOT_API_VERSION"),
        ("HUBSPOT_OBJECT_TYPE", "subscriptions/batch", "HUBSPOT_OBJECT_TYPE"),
        ("HUBSPOT_OAUTH_TOKEN_URL", "api.hubapi.com/oauth/v1/token", "must start with http"),
        ("HUBSPOT_RETRY_MAX_BACKOFF_MS", "500", "at least HUBSPOT_RETRY_BACKOFF_MS"),
    ],
)
def test_values_that_would_make_every_request_fail_are_refused(
    env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    assert expected in problem(env, **{name: value})


@pytest.mark.parametrize(
    ("version", "object_type", "path"),
    [
        ("v3", "subscriptions", "/crm/v3/objects/subscriptions/batch/upsert"),
        ("2026-03", "0-69", "/crm/objects/2026-03/0-69/batch/upsert"),
        ("v3", "p_custom_subs", "/crm/v3/objects/p_custom_subs/batch/upsert"),
    ],
)
def test_versions_and_object_types_hubspot_uses_are_accepted(
    env: pytest.MonkeyPatch, version: str, object_type: str, path: str
) -> None:
    env.setenv("HUBSPOT_API_VERSION", version)
    env.setenv("HUBSPOT_OBJECT_TYPE", object_type)
    assert load_settings().upsert_path == path


@pytest.mark.parametrize(("poll_interval_ms", "warned"), [(8_000, True), (300_000, False)])
def test_a_poll_interval_shorter_than_a_revoke_may_take_is_warned_about(
    env: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    poll_interval_ms: int,
    warned: bool,
) -> None:
    env.setenv("KAFKA_EXTRA_CONFIG", f'{{"max.poll.interval.ms": {poll_interval_ms}}}')
    settings = load_settings()
    settle_s = pipeline_config(settings).rebalance_timeout_s
    warn_if_a_revoke_can_outlast_the_poll_interval(settings, settle_s)
    assert ("can get this member evicted" in caplog.text) is warned


def test_the_default_poll_interval_is_warned_about_when_the_request_timeout_outlasts_it(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("HUBSPOT_TIMEOUT_S", "300")  # a revoke may then take 60 + 305 s: over 300 s
    settings = load_settings()
    warn_if_a_revoke_can_outlast_the_poll_interval(
        settings, pipeline_config(settings).rebalance_timeout_s
    )
    assert "max.poll.interval.ms 300000 is below" in caplog.text


def test_extra_kafka_config_is_applied_over_the_services_tuned_defaults(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv(
        "KAFKA_EXTRA_CONFIG",
        '{"max.poll.interval.ms": 900000, "auto.offset.reset": "latest", '
        '"compression.type": "zstd", "linger.ms": 50, "message.timeout.ms": 60000}',
    )
    common = kafka_common_config(load_settings(), "test")
    consumer, producer = consumer_config(common, "g"), producer_config(common)
    assert consumer["max.poll.interval.ms"] == 900000
    assert consumer["auto.offset.reset"] == "latest"
    assert (producer["compression.type"], producer["linger.ms"]) == ("zstd", 50)
    assert producer["message.timeout.ms"] == 60000
    assert consumer["enable.auto.commit"] is False and producer["acks"] == "all"


@pytest.mark.parametrize(
    "key", ["enable.auto.commit", "isolation.level", "acks", "enable.idempotence", "group.id"]
)
def test_extra_kafka_config_may_not_change_what_the_guarantees_rest_on(
    env: pytest.MonkeyPatch, key: str
) -> None:
    message = problem(env, KAFKA_EXTRA_CONFIG=f'{{"{key}": "x"}}')
    assert f"KAFKA_EXTRA_CONFIG: sets {key}, which the service sets itself" in message


def test_every_key_the_kafka_clients_force_is_refused_in_extra_config() -> None:
    forced = {*CONSUMER_OWNED, *PRODUCER_OWNED, "group.id", "transactional.id"}
    assert forced <= KAFKA_KEYS_THE_SERVICE_SETS


def test_extra_kafka_config_that_is_not_json_is_one_line(env: pytest.MonkeyPatch) -> None:
    message = problem(env, KAFKA_EXTRA_CONFIG="{bad")
    assert (
        message
        == "invalid configuration: KAFKA_EXTRA_CONFIG: is not valid JSON (expected a JSON object)"
    )


def test_extra_kafka_config_values_never_appear_in_errors_or_check_config(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = problem(env, KAFKA_EXTRA_CONFIG='{"sasl.oauthbearer.client.secret": ["s3cret"]}')
    assert "`sasl.oauthbearer.client.secret` must be a string, number or boolean" in message
    assert "s3cret" not in message
    env.setenv("KAFKA_EXTRA_CONFIG", '{"sasl.oauthbearer.client.secret": "s3cret"}')
    assert main(["check-config"]) == 0
    printed = capsys.readouterr().out
    assert "KAFKA_EXTRA_CONFIG=***" in printed and "s3cret" not in printed


def test_a_password_file_that_is_not_utf8_is_one_line(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_bytes(b"\xff\xfe")
    message = problem(env, KAFKA_SASL_PASSWORD_FILE=str(password))
    assert message.startswith("invalid configuration: KAFKA_SASL_PASSWORD_FILE:")
    assert "cannot be read (UnicodeDecodeError)" in message


def test_a_ca_bundle_without_certificates_is_one_line(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    message = problem(env, HUBSPOT_CA_BUNDLE=str(bundle))
    assert "HUBSPOT_CA_BUNDLE:" in message and "no usable PEM certificates" in message


def test_a_kafka_property_the_client_refuses_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        check_topics({"bootstrap.servers": "127.0.0.1:1", "no.such.prop": 1}, ["t"])
    message = str(caught.value)
    assert message.startswith("the Kafka client refused its settings:")
    assert "no.such.prop" in message and "\n" not in message


def test_an_http_port_in_use_is_one_line(env: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env.setenv("HTTP_HOST", "127.0.0.1")
        env.setenv("HTTP_PORT", str(taken.getsockname()[1]))
        settings = load_settings()
        with pytest.raises(ConfigError) as caught:
            listen(settings, Health(SystemClock()), CollectorRegistry())
    assert "HTTP_HOST/HTTP_PORT: cannot listen on 127.0.0.1:" in str(caught.value)


def test_librdkafka_messages_go_through_logging_not_raw_stderr(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    env.setenv("KAFKA_EXTRA_CONFIG", '{"fetch.min.bytes": 1}')  # a consumer-only property
    common = kafka_common_config(load_settings(), "test")
    producer = Producer(producer_config(common))
    deadline = time.monotonic() + 5
    while "CONFWARN" not in caplog.text and time.monotonic() < deadline:
        producer.poll(0.1)
    warnings = [r for r in caplog.records if r.name == LIBRDKAFKA_LOGGER]
    assert any("fetch.min.bytes" in r.getMessage() for r in warnings), caplog.text


@pytest.mark.parametrize("key", ["statistics.interval.ms", "logger"])
def test_extra_kafka_config_may_not_switch_off_the_lag_metric_or_the_json_logs(
    env: pytest.MonkeyPatch, key: str
) -> None:
    message = problem(env, KAFKA_EXTRA_CONFIG=f'{{"{key}": 0}}')
    assert f"sets {key}, which the service sets itself" in message


@pytest.mark.parametrize("key", ["oauth_cb", "error_cb", "throttle_cb", "on_delivery"])
def test_extra_kafka_config_may_not_name_a_callback(env: pytest.MonkeyPatch, key: str) -> None:
    message = problem(env, KAFKA_EXTRA_CONFIG=f'{{"{key}": "x"}}')
    assert f"sets {key}: a callback, which cannot come from the environment" in message


def test_a_poll_interval_librdkafka_reads_but_float_does_not_is_not_a_crash(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("KAFKA_EXTRA_CONFIG", '{"max.poll.interval.ms": "600000ms"}')
    settings = load_settings()
    warn_if_a_revoke_can_outlast_the_poll_interval(
        settings, pipeline_config(settings).rebalance_timeout_s
    )
    assert settings.kafka_extra_config["max.poll.interval.ms"] == "600000ms"  # kept as given
    assert "max.poll.interval.ms" not in caplog.text  # and not guessed at


def test_a_transactional_producer_the_client_refuses_is_a_settings_error() -> None:
    config = producer_config({"bootstrap.servers": "127.0.0.1:1", "no.such.prop": 1})
    with pytest.raises(ConfigError, match=r"no\.such\.prop"), settings_refusals_as_config_errors():
        TransactionalKafkaSink(config, "tx-test", timeout_s=1)
