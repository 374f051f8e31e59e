"""Shared pytest configuration: the fixtures for the real Kafka broker and Schema Registry
come from tests/kafka_support.py and tests/registry_support.py.
"""

pytest_plugins = ["tests.kafka_support", "tests.registry_support"]
