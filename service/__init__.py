"""Kafka stream processor that keeps HubSpot subscriptions in step with subscription events."""

__version__ = "0.1.0"
