"""Local Apache Kafka broker (KRaft, single node) for development and tests.

The broker's jars are fetched with Maven into a cache outside the repository
(:func:`ensure_kafka_libs`); :class:`LocalBroker` runs one as a child JVM on loopback ports.
Command line: ``python -m devstack.kafka fetch`` and ``python -m devstack.kafka run --dir DIR``.
"""

from devstack.kafka.broker import (
    HOST,
    BrokerError,
    Listener,
    LocalBroker,
    create_topics,
    free_ports,
    watermark_offsets,
)
from devstack.kafka.libs import DevstackError, ensure_kafka_libs, kafka_version, libs_dir

__all__ = [
    "HOST",
    "BrokerError",
    "DevstackError",
    "Listener",
    "LocalBroker",
    "create_topics",
    "ensure_kafka_libs",
    "free_ports",
    "kafka_version",
    "libs_dir",
    "watermark_offsets",
]
