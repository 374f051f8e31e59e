"""Kafka stream processor that keeps HubSpot subscriptions in step with subscription events.

core/       pure rules and values: no I/O, time passed in
loop/       the processing loop: pipeline, workers, caller, publishing, commits
adapters/   Kafka, HubSpot over HTTP, HTTP endpoints, Prometheus, logging
entry/      the command line, the composition root, settings, redrive
"""

__version__ = "0.1.0"
