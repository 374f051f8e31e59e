"""Helpers for integration tests: run the service as a real process, produce and read topics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from devstack.kafka import create_topics, watermark_offsets

REPO = Path(__file__).resolve().parents[2]
TOKEN = "integration-token-5f1c2a"
ID_PROPERTY = "external_subscription_id"


def run_command(
    env: dict[str, str], *args: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m service <args>` to completion, with its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass(frozen=True)
class Topics:
    input: str
    output: str
    dlq: str
    group: str


def new_topics(bootstrap: str, partitions: int = 3) -> Topics:
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(f"events-{suffix}", f"results-{suffix}", f"dlq-{suffix}", f"group-{suffix}")
    create_topics(bootstrap, {topics.input: partitions, topics.output: 3, topics.dlq: 1})
    return topics


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(bootstrap: str, topics: Topics, hubspot_url: str, **extra: str) -> dict[str, str]:
    # None of the caller's Kafka, HubSpot or tracing settings: `extra` sets what a test needs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "HUBSPOT_", "OTEL_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_INPUT_TOPIC=topics.input,
        KAFKA_OUTPUT_TOPIC=topics.output,
        KAFKA_DLQ_TOPIC=topics.dlq,
        KAFKA_GROUP_ID=topics.group,
        HUBSPOT_BASE_URL=hubspot_url,
        HUBSPOT_ACCESS_TOKEN=TOKEN,
        HUBSPOT_ID_PROPERTY=ID_PROPERTY,
        HUBSPOT_RETRY_BACKOFF_MS="100",
        HUBSPOT_RETRY_MAX_BACKOFF_MS="1000",
        BATCH_MAX_WAIT_MS="200",
        COMMIT_INTERVAL_MS="200",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_port()),
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m service run` as a child process, with its stderr kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "run"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=self._log,
        )

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['HTTP_PORT']}/metrics"

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` (all label sets); 0 when absent or unreachable."""
        try:
            text = httpx.get(self.metrics_url, timeout=2).text
        except httpx.HTTPError:
            self._fail_if_exited()
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def samples(self, name: str) -> dict[str, float]:
        """Every sample of `name`, by its label set as exposed; empty when absent."""
        try:
            text = httpx.get(self.metrics_url, timeout=2).text
        except httpx.HTTPError:
            self._fail_if_exited()
            return {}
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels, _, value = line[len(name) :].rpartition(" ")
                found[labels] = float(value)
        return found

    def _fail_if_exited(self) -> None:
        """Unreachable because the process ended (e.g. refused its settings): say so now,
        rather than let a test wait out its deadline on zeros."""
        code = self.process.poll()
        if code is not None:
            tail = "\n".join(self.log_text().splitlines()[-5:])
            raise AssertionError(f"the service exited with code {code}:\n{tail}")

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM (once its endpoints answer: its signal handlers are in place by then, so a
        signal that comes early is a drain, not a kill) and wait for the exit code."""
        deadline = time.monotonic() + 30
        while self.process.poll() is None and probe(self.metrics_url)[0] == 0:
            assert time.monotonic() < deadline, "the service never started listening"
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_service(env: dict[str, str], log_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(env, log_path)
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.kill()


def produce(
    bootstrap: str, topic: str, events: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    refused: list[str] = []

    def delivered(error: object, _: object) -> None:
        if error is not None:
            refused.append(str(error))

    for key, value in events:
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not refused, f"the broker refused {len(refused)} event(s): {refused[0]}"


def event_bytes(event_id: str, **properties: object) -> tuple[bytes, bytes]:
    return event_id.encode(), orjson.dumps({"id": event_id, "properties": properties})


@dataclass(frozen=True)
class Consumed:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int

    def json(self) -> dict[str, object]:
        document = orjson.loads(self.value or b"null")
        assert isinstance(document, dict)
        return document


def read_all(bootstrap: str, topic: str, *, isolation: str = "read_committed") -> list[Consumed]:
    """Every record currently in `topic` (up to each partition's high watermark)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        ends = {}
        for partition in metadata.topics[topic].partitions:
            low, high = watermark_offsets(consumer, TopicPartition(topic, partition), 10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[Consumed] = []
        deadline = time.monotonic() + 30
        idle_since = time.monotonic()
        while time.monotonic() < deadline and not _caught_up(consumer, topic, ends):
            message = consumer.poll(0.2)
            if message is None or message.error():
                if time.monotonic() - idle_since > 2.0:
                    break  # an open transaction holds the rest back (read_committed)
                continue
            idle_since = time.monotonic()
            partition, offset = message.partition() or 0, message.offset() or 0
            records.append(
                Consumed(
                    message.key(),
                    message.value(),
                    dict(message.headers() or []),
                    partition,
                    offset,
                )
            )
        return records
    finally:
        consumer.close()


def _caught_up(consumer: Consumer, topic: str, ends: dict[int, int]) -> bool:
    """Every partition's position has reached its end (transaction markers included)."""
    positions = consumer.position([TopicPartition(topic, p) for p in ends])
    return all(tp.offset >= ends[tp.partition] for tp in positions)


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed positions; retried while the broker is (re)electing a coordinator.

    read_uncommitted: a read_committed consumer asks for stable offsets, which a transaction
    left open by a killed exactly_once member withholds until it times out (60 s)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"}
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                offsets = consumer.committed(
                    [TopicPartition(topic, p) for p in range(partitions)], 10
                )
                return {tp.partition: tp.offset for tp in offsets}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def wait_for_zero_lag(service: ServiceProcess, partitions: int, timeout_s: float = 30) -> None:
    """Every partition's lag series is exported, and reads 0."""
    name = "subscription_upserter_consumer_lag"

    def caught_up() -> bool:
        lags = service.samples(name)
        return len(lags) == partitions and set(lags.values()) == {0}

    wait_until(caught_up, timeout_s, f"zero lag on all {partitions} partitions")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def results_by_source(bootstrap: str, topic: str) -> dict[tuple[int, int], list[dict[str, object]]]:
    grouped: dict[tuple[int, int], list[dict[str, object]]] = {}
    for record in read_all(bootstrap, topic):
        document = record.json()
        source = document["source"]
        assert isinstance(source, dict)
        grouped.setdefault((source["partition"], source["offset"]), []).append(document)
    return grouped


def input_offsets(bootstrap: str, topic: str) -> set[tuple[int, int]]:
    return {(r.partition, r.offset) for r in read_all(bootstrap, topic)}


def probe(url: str) -> tuple[int, str]:
    """Status and body of a GET, or (0, "") while the server is not listening yet."""
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return 0, ""
    return response.status_code, response.text


def result_counts(
    bootstrap: str, topic: str, isolation: str = "read_committed"
) -> Counter[tuple[int, int]]:
    """How many results each input (partition, offset) has in the results topic."""
    counts: Counter[tuple[int, int]] = Counter()
    for record in read_all(bootstrap, topic, isolation=isolation):
        source = record.json()["source"]
        assert isinstance(source, dict)
        counts[(source["partition"], source["offset"])] += 1
    return counts


def run_until_results(
    env: dict[str, str], log_path: Path, expected: int, timeout_s: float = 60
) -> str:
    """Run the service until it published `expected` results; stop it (exit 0); return its log."""
    with running_service(env, log_path) as service:
        wait_until(
            lambda: service.metric("subscription_upserter_results_total") >= expected,
            timeout_s,
            f"{expected} results",
        )
        assert service.stop() == 0
    return service.log_text()
