"""The local Kafka broker: starts, carries messages, keeps data across restarts and crashes."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from devstack.kafka.broker import (
    BrokerError,
    Listener,
    LocalBroker,
    create_topics,
    watermark_offsets,
)
from devstack.kafka.libs import DevstackError
from tests.kafka_support import TopicFactory


def _produce(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, value in enumerate(values):
        producer.produce(topic, key=f"k{i}".encode(), value=value)
    assert producer.flush(30) == 0


def _consume(
    bootstrap: str, topic: str, group: str, count: int, timeout_s: float = 30
) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[Message] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg)
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def test_broker_answers_metadata(kafka_bootstrap: str, local_broker: LocalBroker | None) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert metadata.brokers
    if local_broker is not None:
        assert kafka_bootstrap == f"127.0.0.1:{local_broker.port}"
        assert local_broker.is_running
        assert local_broker.log_file.stat().st_size > 0


def test_message_round_trips_through_a_consumer_group(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    topic = topic_factory(partitions=3)
    _produce(kafka_bootstrap, topic, b"one", b"two", b"three")
    got = _consume(kafka_bootstrap, topic, f"g-{uuid.uuid4().hex}", 3)
    assert sorted(m.value() or b"" for m in got) == [b"one", b"three", b"two"]
    assert {m.key() for m in got} == {b"k0", b"k1", b"k2"}


def test_topics_are_not_auto_created(
    kafka_bootstrap: str, local_broker: LocalBroker | None
) -> None:
    if local_broker is None:
        pytest.skip("the external cluster's auto.create.topics.enable is not ours to know")
    name = f"never-created-{uuid.uuid4().hex}"
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(name, timeout=10)
    assert metadata.topics[name].error is not None


def test_create_topics_tolerates_existing_and_applies_config(kafka_bootstrap: str) -> None:
    name = f"compacted-{uuid.uuid4().hex}"
    create_topics(kafka_bootstrap, {name: 4}, {"cleanup.policy": "compact"})
    create_topics(kafka_bootstrap, {name: 4})  # already exists: no error
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 4
    resource = ConfigResource(ResourceType.TOPIC, name)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_restart_keeps_messages_and_committed_offsets(
    restartable_broker: LocalBroker, topic_factory: TopicFactory
) -> None:
    bootstrap = restartable_broker.bootstrap_servers
    topic = topic_factory()
    group = f"g-{uuid.uuid4().hex}"
    _produce(bootstrap, topic, b"before-restart-1", b"before-restart-2")
    assert len(_consume(bootstrap, topic, group, 1)) >= 1  # commits what it read

    restartable_broker.restart()

    assert restartable_broker.bootstrap_servers == bootstrap
    again = _consume(bootstrap, topic, f"fresh-{uuid.uuid4().hex}", 2)
    assert [m.value() for m in again] == [b"before-restart-1", b"before-restart-2"]
    _produce(bootstrap, topic, b"after-restart")
    resumed = _consume(bootstrap, topic, group, 2)  # from the offset committed before
    assert [m.value() for m in resumed] == [b"before-restart-2", b"after-restart"]


def test_kill_then_start_recovers_acknowledged_messages(
    restartable_broker: LocalBroker, topic_factory: TopicFactory
) -> None:
    bootstrap = restartable_broker.bootstrap_servers
    topic = topic_factory()
    _produce(bootstrap, topic, b"survives-a-crash")

    assert restartable_broker.kill() == -9
    assert not restartable_broker.is_running
    restartable_broker.start()

    got = _consume(bootstrap, topic, f"g-{uuid.uuid4().hex}", 1)
    assert [m.value() for m in got] == [b"survives-a-crash"]


def test_server_properties_include_extra_listeners_and_overrides(tmp_path: Path) -> None:
    broker = LocalBroker(
        tmp_path,
        port=19092,
        controller_port=19093,
        listeners=[Listener("sasl_ssl", 0, "sasl_ssl")],
        extra_properties={"num.partitions": 3, "sasl.enabled.mechanisms": "SCRAM-SHA-512"},
    )
    props = broker.server_properties()
    sasl_port = broker.listener_port("SASL_SSL")
    assert sasl_port not in (0, 19092, 19093)
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:{sasl_port},CONTROLLER://127.0.0.1:19093"
    )
    assert props["advertised.listeners"] == (
        f"PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:{sasl_port}"
    )
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"]
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["num.partitions"] == "3"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.dirs"] == str(tmp_path.resolve() / "data")
    assert broker.bootstrap_servers == "127.0.0.1:19092"
    assert not broker.is_running
    assert broker.stop() is None  # never started: nothing to do


def test_reserved_listener_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="listener names"):
        LocalBroker(tmp_path, listeners=[Listener("CONTROLLER")])


@pytest.mark.kafka
def test_start_failure_names_the_cause_and_kills_the_jvm(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalBroker(tmp_path, port=int(taken.getsockname()[1]))
        with pytest.raises(BrokerError, match="Address already in use") as info:
            broker.start(timeout_s=60)
    assert "tail of" in str(info.value)
    assert not broker.is_running


class _LeaderNotYetActing:
    """A consumer whose partition leader answers NOT_LEADER_FOR_PARTITION `refusals` times."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.asked = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.refusals:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 0, 7


def test_watermark_offsets_asks_again_while_the_leader_is_not_yet_acting() -> None:
    consumer = _LeaderNotYetActing(refusals=2)
    partition = TopicPartition("t", 0)
    assert watermark_offsets(cast(Consumer, consumer), partition, timeout_s=10) == (0, 7)
    assert consumer.asked == 3


def test_watermark_offsets_gives_up_with_the_partition_named() -> None:
    consumer = _LeaderNotYetActing(refusals=10**6)
    with pytest.raises(DevstackError, match=r"t\[0\] gave no offsets"):
        watermark_offsets(cast(Consumer, consumer), TopicPartition("t", 0), timeout_s=0.3)
