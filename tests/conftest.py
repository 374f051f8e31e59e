"""Shared pytest configuration: the fixtures for the real Kafka broker, Schema Registry and
Jaeger come from tests/kafka_support.py, tests/registry_support.py and tests/jaeger_support.py.
"""

pytest_plugins = ["tests.kafka_support", "tests.registry_support", "tests.jaeger_support"]
