"""The service over SASL_SSL (SCRAM-SHA-512) against a second, secured local broker."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from devstack.emulator import RunningEmulator
from tests.integration.support import (
    TOKEN,
    Topics,
    event_bytes,
    free_port,
    input_offsets,
    new_topics,
    produce,
    read_all,
    results_by_source,
    run_command,
    running_service,
    service_env,
    wait_until,
)
from tests.security.conftest import SecureKafka

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _secure_env(
    kafka: SecureKafka, topics: Topics, hubspot_url: str, **extra: str
) -> dict[str, str]:
    env = service_env(kafka.sasl_ssl, topics, hubspot_url)
    env.update(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME=kafka.username,
        KAFKA_SASL_PASSWORD=kafka.password,
        KAFKA_SSL_CA_LOCATION=str(kafka.certificates.ca),
    )
    env.update(extra)
    return env


def _events(count: int) -> list[tuple[bytes | None, bytes | None]]:
    return [event_bytes(f"sec-{n:04d}", hs_name=f"Plan {n}") for n in range(count)]


def _start_up(env: dict[str, str], timeout_s: float = 40) -> tuple[int, str, float]:
    started = time.monotonic()
    done = run_command(env, "run", timeout_s=timeout_s)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _run_to_completion(
    kafka: SecureKafka, env: dict[str, str], topics: Topics, count: int, log: Path
) -> str:
    with running_service(env, log) as service:
        wait_until(
            lambda: len(results_by_source(kafka.plaintext, topics.output)) >= count,
            60,
            f"{count} results over SASL_SSL",
        )
        assert service.stop() == 0
        return service.log_text()


def test_the_service_consumes_and_publishes_over_sasl_ssl_with_scram(
    secure_kafka: SecureKafka, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(secure_kafka.plaintext)
    produce(secure_kafka.plaintext, topics.input, _events(50))
    env = _secure_env(secure_kafka, topics, emulator.url)
    _run_to_completion(secure_kafka, env, topics, 50, tmp_path / "service.log")
    results = results_by_source(secure_kafka.plaintext, topics.output)
    assert set(results) == input_offsets(secure_kafka.plaintext, topics.input)
    assert {docs[0]["status"] for docs in results.values()} == {"upserted"}
    assert len(emulator.control.store()) == 50


def test_the_password_can_come_from_a_file(
    secure_kafka: SecureKafka, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(secure_kafka.plaintext)
    produce(secure_kafka.plaintext, topics.input, _events(5))
    password_file = tmp_path / "kafka-password"
    password_file.write_text(secure_kafka.password + "\n")
    env = _secure_env(
        secure_kafka, topics, emulator.url, KAFKA_SASL_PASSWORD_FILE=str(password_file)
    )
    del env["KAFKA_SASL_PASSWORD"]
    _run_to_completion(secure_kafka, env, topics, 5, tmp_path / "service.log")
    assert len(emulator.control.store()) == 5


def test_wrong_credentials_stop_start_up_quickly_with_a_clear_line_and_no_secret(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    topics = new_topics(secure_kafka.plaintext)
    wrong = "WrongKafkaPassword9f8e7d"
    env = _secure_env(secure_kafka, topics, "http://127.0.0.1:9", KAFKA_SASL_PASSWORD=wrong)
    code, output, elapsed = _start_up(env)
    assert code != 0
    assert elapsed < 35
    error_lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert error_lines, output
    assert "authentication" in error_lines[-1].lower(), error_lines[-1]
    assert wrong not in output and secure_kafka.password not in output and TOKEN not in output


def test_kafka_extra_config_reaches_librdkafka_and_a_bad_value_names_the_setting(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    topics = new_topics(secure_kafka.plaintext)
    env = _secure_env(
        secure_kafka,
        topics,
        "http://127.0.0.1:9",
        KAFKA_EXTRA_CONFIG='{"socket.keepalive.enable": "sometimes"}',
    )
    code, output, elapsed = _start_up(env)
    assert code == 2 and elapsed < 35, output  # a settings problem: one line, no traceback
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "socket.keepalive.enable" in error_lines[0], output
    assert secure_kafka.password not in output


def test_no_kafka_password_or_hubspot_token_in_logs_metrics_results_or_dead_letters(
    secure_kafka: SecureKafka, emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(secure_kafka.plaintext)
    events = _events(20)
    events += [(b"bad-1", b"{not json"), (b"bad-2", b'{"id": "x", "properties": {"a": [1]}}')]
    events += [event_bytes("unknown-prop", hs_name="x", not_in_schema="y")]
    produce(secure_kafka.plaintext, topics.input, events)
    env = _secure_env(
        secure_kafka, topics, emulator.url, LOG_LEVEL="DEBUG", HTTP_PORT=str(free_port())
    )
    texts: list[str] = []
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: len(results_by_source(secure_kafka.plaintext, topics.output)) >= len(events),
            60,
            "every result",
        )
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= 1, 10, "metrics"
        )
        texts.append(httpx.get(service.metrics_url, timeout=5).text)
        assert service.stop() == 0
        texts.append(service.log_text())
    check = run_command(env, "check-config", timeout_s=30)
    assert check.returncode == 0
    texts.append(check.stdout + check.stderr)
    redrive = run_command(env, "redrive", "--dry-run", timeout_s=60)
    assert redrive.returncode == 0, redrive.stderr  # the redrive command works over SASL_SSL too
    assert "would send 3," in redrive.stdout
    texts.append(redrive.stdout + redrive.stderr)
    for topic in (topics.output, topics.dlq):
        for record in read_all(secure_kafka.plaintext, topic):
            texts.append(repr(record))
    assert len(read_all(secure_kafka.plaintext, topics.dlq)) == 3
    everything = "\n".join(texts)
    assert len(everything) > 1_000
    assert secure_kafka.password not in everything
    assert TOKEN not in everything
