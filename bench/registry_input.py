"""The overhead scenario's Avro variant: the same backlog, as a Schema Registry format.

The JSON backlog's keys (so the same ids, in the same order and skew) carried by the billing
example's events (docs/upstream-events.md), written with confluent-kafka's AvroSerializer in
both schema versions, and read by the service through a local Apicurio registry and the
example's mapping (fifteen properties: enums, exact decimals, timestamps, JMESPath sums).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from confluent_kafka.schema_registry import SchemaRegistryClient

from bench.workload import Event
from devstack.emulator.config import DEFAULT_KNOWN_PROPERTIES
from devstack.examples.billing import (
    CUSTOM_PROPERTIES,
    MAPPING_FILE,
    avro_serializers,
    subscription_events,
)
from devstack.registry import LocalRegistry

# The emulator must know the example's custom properties, or it rejects every input.
EMULATOR_CONFIG: dict[str, object] = {
    "known_properties": sorted(DEFAULT_KNOWN_PROPERTIES | CUSTOM_PROPERTIES)
}


@contextmanager
def local_registry(work_dir: Path) -> Iterator[str]:
    """A registry for the run (in memory); yields its Confluent-compatible URL."""
    registry = LocalRegistry(work_dir, persistent=False)
    registry.start(timeout_s=120)
    try:
        yield registry.url
    finally:
        registry.stop()


def avro_backlog(events: Sequence[Event], registry_url: str) -> list[Event]:
    """`events`' keys with billing events as Avro values (versions 1 and 2 alternating)."""
    serialize = avro_serializers(SchemaRegistryClient({"url": registry_url}), "bench-billing")
    billing = subscription_events(len(events), 1_000, seed=5)
    return [
        (key, serialize(replace(event, subscription_id=key.decode())))
        for (key, _), event in zip(events, billing, strict=True)
    ]


def avro_settings(registry_url: str) -> dict[str, str]:
    return {
        "INPUT_FORMAT": "avro",
        "SCHEMA_REGISTRY_URL": registry_url,
        "EVENT_MAPPING_FILE": str(MAPPING_FILE),
    }
