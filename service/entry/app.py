"""Composition root: builds the settings' adapters and wires them into the pipeline.

The only module that reads the environment (through service.entry.settings, and
service.entry.tracing for the OTEL_* variables) and installs signal handlers. Everything else
receives what it needs as arguments.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY, CollectorRegistry

from service.adapters.http_endpoints import HttpEndpoints
from service.adapters.hubspot import (
    FileToken,
    HttpxUpsertTransport,
    OAuthToken,
    StaticToken,
    TokenSource,
)
from service.adapters.kafka import (
    CONSUMER_DEFAULTS,
    KafkaSink,
    KafkaSource,
    TransactionalKafkaSink,
    check_topics,
    consumer_config,
    largest_record,
    producer_config,
    settings_refusals_as_config_errors,
)
from service.adapters.logs import REDACT, TRACE_FIELDS
from service.adapters.prometheus import Metrics
from service.core.associations import ApiPaths
from service.core.batching import BatchLimits
from service.core.clock import Clock, SystemClock
from service.core.codec import ValidationLimits
from service.core.errors import ConfigError
from service.core.health import Health
from service.core.last_written import LastWritten
from service.core.ports import Tracing
from service.core.ratelimit import RateLimiter
from service.core.records import Topics
from service.core.retry import Backoff
from service.core.tracing import NO_TRACING
from service.entry import native
from service.entry.event_input import event_reader
from service.entry.kafka_clients import kafka_common_config
from service.entry.settings import DeliveryGuarantee, Settings
from service.entry.tracing import StartedTracing, start_tracing
from service.loop.associator import AssociationPolicy
from service.loop.caller import CallerPolicy, UpsertCaller
from service.loop.commit import Committer, OffsetCommitter, TransactionCommitter
from service.loop.handover import Handover
from service.loop.pipeline import Pipeline, PipelineConfig
from service.loop.skipping import SkipUnchanged

log = logging.getLogger(__name__)


@dataclass
class Running:
    """What `run` started, for tests that drive the service in-process."""

    pipeline: Pipeline
    endpoints: HttpEndpoints
    health: Health
    metrics: Metrics


def token_source(settings: Settings, clock: Clock) -> TokenSource:
    """The static token, the mounted token file, or OAuth refresh (in that order)."""
    for secret in (
        settings.hubspot_access_token,
        settings.hubspot_client_secret,
        settings.hubspot_refresh_token,
    ):
        if secret is not None:
            REDACT.add(secret.get_secret_value())
    if settings.hubspot_access_token is not None:
        return StaticToken(settings.hubspot_access_token.get_secret_value())
    if settings.hubspot_access_token_file is not None:
        return FileToken(settings.hubspot_access_token_file, on_secret=REDACT.add)
    assert settings.hubspot_client_secret and settings.hubspot_refresh_token
    return OAuthToken(
        settings.hubspot_oauth_token_url or f"{settings.hubspot_base_url}/oauth/v3/token",
        client_id=settings.hubspot_client_id or "",
        client_secret=settings.hubspot_client_secret.get_secret_value(),
        refresh_token=settings.hubspot_refresh_token.get_secret_value(),
        clock=clock,
        refresh_margin_s=settings.hubspot_oauth_refresh_margin_s,
        on_secret=REDACT.add,
        verify=str(settings.hubspot_ca_bundle) if settings.hubspot_ca_bundle else True,
    )


def pipeline_config(settings: Settings, dlq_max_bytes: int | None = None) -> PipelineConfig:
    """`dlq_max_bytes`: the biggest record the dead-letter topic takes, when known."""
    return PipelineConfig(
        topics=Topics(
            output=settings.kafka_output_topic,
            dlq=settings.kafka_dlq_topic,
            dlq_max_bytes=dlq_max_bytes,
        ),
        validation=ValidationLimits(
            default_id_property=settings.hubspot_id_property,
            max_properties=settings.event_max_properties,
        ),
        batching=BatchLimits(
            max_size=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            max_bytes=settings.batch_max_bytes,
        ),
        max_in_flight=settings.max_in_flight_batches,
        commit_interval_s=settings.commit_interval_ms / 1000,
        drain_timeout_s=settings.drain_timeout_s,
        request_timeout_s=settings.hubspot_timeout_s,
        max_buffered_events=settings.max_buffered_events,
        max_buffered_bytes=settings.max_buffered_bytes,
        max_commit_metadata_bytes=settings.kafka_commit_metadata_max_bytes,
    )


def association_policy(settings: Settings, backoff: Backoff) -> AssociationPolicy:
    """Associations to contacts, companies, deals: where they go, and what a missing
    target comes to."""
    return AssociationPolicy(
        paths=ApiPaths(settings.hubspot_api_version, settings.hubspot_object_type),
        missing_target=settings.association_missing_target,
        retry_s=settings.association_retry_s,
        backoff=backoff,
        cache_max=settings.association_cache_max,
        cache_ttl_s=settings.association_cache_ttl_s,
    )


def warn_if_a_revoke_can_outlast_the_poll_interval(settings: Settings, settle_s: float) -> None:
    """A revoke may take the settle, then a request on the wire: longer than
    `max.poll.interval.ms`, and the broker evicts the member mid-revoke."""
    configured = settings.kafka_extra_config.get(
        "max.poll.interval.ms", CONSUMER_DEFAULTS["max.poll.interval.ms"]
    )
    if isinstance(configured, bool):
        return
    try:
        interval_s = float(configured) / 1000
    except ValueError:  # e.g. "600000ms": librdkafka's own reading is not worth guessing
        return
    revoke_s = settle_s + settings.hubspot_timeout_s + 5
    if interval_s < revoke_s:
        log.warning(
            "max.poll.interval.ms %s is below what a revoke may take (%.0f s: %.0f s for "
            "batches to finish, then up to HUBSPOT_TIMEOUT_S + 5 s for a request on the "
            "wire); a long revoke can get this member evicted from the group",
            configured,
            revoke_s,
            settle_s,
        )


def build(
    settings: Settings, registry: CollectorRegistry = REGISTRY, tracing: Tracing = NO_TRACING
) -> Running:
    """Create the adapters, the caller and the pipeline, and start the HTTP endpoints."""
    reader = event_reader(settings, pipeline_config(settings).validation)  # before any I/O
    clock = SystemClock()
    metrics = Metrics(registry, compiled=bool(native.compiled_modules()))
    health = Health(clock)
    common = kafka_common_config(settings, "subscription-upserter")
    check_topics(
        common,
        [settings.kafka_input_topic, settings.kafka_output_topic, settings.kafka_dlq_topic],
    )
    transport = HttpxUpsertTransport(
        settings.hubspot_base_url,
        settings.upsert_path,
        token_source(settings, clock),
        timeout_s=settings.hubspot_timeout_s,
        max_connections=settings.max_in_flight_batches,
        verify=str(settings.hubspot_ca_bundle) if settings.hubspot_ca_bundle else True,
    )
    limiter = RateLimiter(
        settings.hubspot_rate_limit_requests, settings.hubspot_rate_limit_interval_ms / 1000, clock
    )
    hard_stop, handover = threading.Event(), Handover()
    backoff = Backoff(
        base_s=settings.hubspot_retry_backoff_ms / 1000,
        cap_s=settings.hubspot_retry_max_backoff_ms / 1000,
    )
    skip_unchanged = (
        SkipUnchanged(
            LastWritten(settings.skip_unchanged_max_ids, settings.skip_unchanged_ttl_s, clock),
            metrics,
        )
        if settings.skip_unchanged
        else None
    )
    caller = UpsertCaller(
        transport,
        limiter=limiter,
        clock=clock,
        metrics=metrics,
        health=health,
        policy=CallerPolicy(
            max_body_bytes=settings.batch_max_bytes,
            auth_retry_s=settings.hubspot_auth_retry_s,
            daily_probe_s=settings.hubspot_daily_probe_interval_s,
            daily_reset_zone=ZoneInfo(settings.hubspot_daily_reset_timezone),
            backoff=backoff,
            on_invalid_property=settings.on_invalid_property,
            transient_max_attempts=settings.hubspot_transient_max_attempts,
            transient_max_s=settings.hubspot_transient_max_s,
        ),
        associations=association_policy(settings, backoff),
        aborted=hard_stop.is_set,
        handover=handover,
        tracing=tracing,
    )
    with settings_refusals_as_config_errors():  # e.g. a consumer-only value it refuses
        source = KafkaSource(
            consumer_config(common, settings.kafka_group_id), settings.kafka_input_topic
        )
        sink, committer = _sink_and_committer(settings, common, source)
    config = pipeline_config(
        settings, largest_record(producer_config(common), settings.kafka_dlq_topic)
    )
    warn_if_a_revoke_can_outlast_the_poll_interval(settings, config.rebalance_timeout_s)
    pipeline = Pipeline(
        source=source,
        sink=sink,
        committer=committer,
        execute=caller.execute,
        clock=clock,
        metrics=metrics,
        health=health,
        config=config,
        hard_stop=hard_stop,
        handover=handover,
        on_partition_share=limiter.set_guaranteed_share,
        reader=reader,
        tracing=tracing,
        skip_unchanged=skip_unchanged,
    )
    return Running(pipeline, listen(settings, health, registry), health, metrics)


def listen(settings: Settings, health: Health, registry: CollectorRegistry) -> HttpEndpoints:
    try:
        return HttpEndpoints(settings.http_host, settings.http_port, health, registry)
    except OSError as exc:  # an unknown host, a port in use or not allowed
        where = f"{settings.http_host}:{settings.http_port}"
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError(
            f"invalid configuration: HTTP_HOST/HTTP_PORT: cannot listen on {where}: {reason}"
        ) from None


def _sink_and_committer(
    settings: Settings, common: dict[str, Any], source: KafkaSource
) -> tuple[KafkaSink, Committer]:
    """at_least_once: a plain producer and consumer commits; exactly_once: transactions."""
    if settings.delivery_guarantee is DeliveryGuarantee.AT_LEAST_ONCE:
        committer = OffsetCommitter(source, settings.kafka_commit_metadata_max_bytes)
        return KafkaSink(producer_config(common)), committer
    transactional_id = settings.kafka_transactional_id or (
        f"{settings.kafka_group_id}-{socket.gethostname()}"
    )
    sink = TransactionalKafkaSink(producer_config(common), transactional_id)
    transactions = TransactionCommitter(
        source,
        sink,
        flush_timeout_s=10,  # within the grace period
        max_metadata_bytes=settings.kafka_commit_metadata_max_bytes,
    )
    return sink, transactions


# The loop allocates a few objects per event and keeps thousands of events buffered, none of
# them in reference cycles: with the default thresholds the collector runs every 700
# allocations and keeps walking the buffered events, about a tenth of the loop's time.
_GC_THRESHOLDS = (50_000, 20, 100)


def _tune_garbage_collector() -> None:
    """Freeze what start-up built (never collected again) and collect young objects rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        # Only this: a handler runs between two bytecodes of the main thread, and a log
        # write there could re-enter one it interrupted ("reentrant call"), raising before
        # the stop was ever set. The loop logs the stop when it sees it.
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tracing = start_tracing(settings)
    TRACE_FIELDS.use(tracing.log_fields)
    try:
        return _serve(settings, stop, tracing)
    finally:
        tracing.close()  # exports the spans still buffered


def _serve(settings: Settings, stop: threading.Event, tracing: StartedTracing) -> int:
    running = build(settings, tracing=tracing.tracing)
    _tune_garbage_collector()
    log.info(
        "starting",
        extra={
            "input_topic": settings.kafka_input_topic,
            "http_port": running.endpoints.port,
            "hot_path": native.describe(),
            "input_format": settings.input_format.value,
            "event_mapping_file": str(settings.event_mapping_file or ""),
            "tracing": tracing.describe,
        },
    )
    try:
        return running.pipeline.run(stop)
    finally:
        running.endpoints.close()
