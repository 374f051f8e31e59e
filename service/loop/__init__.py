"""The processing loop: the pipeline and its rebalance handling, the worker threads, one
batch's request loop against HubSpot (caller), hand-over of revoked partitions, publishing
outcomes, committing offsets, and skipping writes that would change nothing (skipping).
Talks to Kafka, HubSpot and Prometheus only through the ports in service.core.ports.
"""
