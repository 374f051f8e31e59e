"""Tests of the local dev stack (Kafka broker)."""
