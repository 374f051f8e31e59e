"""Shared pytest configuration: the Kafka fixtures come from tests/kafka_support.py."""

pytest_plugins = ["tests.kafka_support"]
