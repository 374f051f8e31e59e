"""The edges: Kafka (confluent-kafka), HubSpot over HTTP (httpx), the service's own HTTP
endpoints, Prometheus metrics and JSON logging. Adapters implement the ports; they import the
core, never the loop, the entry points or each other.
"""
