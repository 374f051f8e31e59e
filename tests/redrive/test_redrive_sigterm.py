"""`python -m service redrive` stopped by SIGTERM (a Kubernetes Job's pod being stopped): it
stops reading, delivers and commits what it sent, exits 0, and the next run carries on."""

from __future__ import annotations

import signal
import subprocess
import sys

import orjson
import pytest
from confluent_kafka import Producer

from tests.integration.support import (
    REPO,
    committed,
    new_topics,
    read_all,
    service_env,
    wait_until,
)

pytestmark = pytest.mark.kafka

DEAD_LETTERS = 1000
# A producer that sends at most 20 records per half second: the run is still reading when
# SIGTERM arrives (about 25 s for the whole range).
SLOW_PRODUCER = '{"queue.buffering.max.messages": 20, "linger.ms": 500}'


def _dead_letter(key: str) -> dict[str, object]:
    return {
        "key": key.encode(),
        "value": orjson.dumps({"id": key, "properties": {"hs_name": key}}),
        "headers": [("error.status", b"invalid"), ("error.category", b"NOT_JSON")],
    }


def _write_dlq(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for n in range(DEAD_LETTERS):
        producer.produce(topic, **_dead_letter(f"k{n:04d}"))  # type: ignore[arg-type]
    assert producer.flush(30) == 0


def _keys(bootstrap: str, topic: str) -> list[bytes | None]:
    return [record.key for record in read_all(bootstrap, topic)]


def test_sigterm_stops_reading_commits_what_was_sent_and_exits_0(kafka_bootstrap: str) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    env = service_env(kafka_bootstrap, topics, "http://127.0.0.1:9")
    _write_dlq(kafka_bootstrap, topics.dlq)
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "redrive"],
        cwd=REPO, env={**env, "KAFKA_EXTRA_CONFIG": SLOW_PRODUCER},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: len(_keys(kafka_bootstrap, topics.input)) >= 40, 60, "40 republished")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "stopped by a signal" in stdout, stdout
    sent = _keys(kafka_bootstrap, topics.input)
    assert 40 <= len(sent) < DEAD_LETTERS and f"sent {len(sent)}," in stdout
    assert sent == [f"k{n:04d}".encode() for n in range(len(sent))]
    group = f"{topics.group}-redrive"
    assert committed(kafka_bootstrap, group, topics.dlq, 1) == {0: len(sent)}

    rest = subprocess.run(
        [sys.executable, "-m", "service", "redrive"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert rest.returncode == 0, rest.stderr
    assert f"sent {DEAD_LETTERS - len(sent)}," in rest.stdout
    everything = [f"k{n:04d}".encode() for n in range(DEAD_LETTERS)]
    assert _keys(kafka_bootstrap, topics.input) == everything
