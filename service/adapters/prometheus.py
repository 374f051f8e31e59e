"""Every Prometheus metric the service exports, in one place.

Conventions: one prefix (`subscription_upserter_`), base units (seconds, bytes), `_total`
for counters, and no ids, keys or offsets as label values (topic and partition are
bounded and allowed). Owns metric definitions only; updating them is the callers' job.
"""

from __future__ import annotations

import platform
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric

from service import __version__
from service.core import ports
from service.core.health import READY, STARTING

PREFIX = "subscription_upserter"

BATCH_INPUT_BUCKETS = (1, 2, 5, 10, 25, 50, 75, 90, 95, 99, 100)
REQUEST_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60)
E2E_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900, 3600)


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


class Metrics:
    """The service's metrics, registered in one registry (the default one in production)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        compiled: bool = False,
    ) -> None:
        self.registry = registry
        self._monotonic = monotonic
        self._events(registry)
        self._skip_unchanged(registry)
        self._hubspot(registry)
        self._work(registry)
        self._kafka(registry)
        self._schema_registry(registry)
        self.build_info = Info(_name("build"), "Version of the service.", registry=registry)
        self.build_info.info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "compiled": "true" if compiled else "false",
            }
        )

    def _events(self, registry: CollectorRegistry) -> None:
        self.events_consumed: ports.Counter = Counter(
            _name("events_consumed"), "Input events read from Kafka.", registry=registry
        )
        self.events_skipped: ports.Counter = Counter(
            _name("events_skipped"),
            "Input events read but not worked on: handed over again by the Kafka client "
            "(redelivered), or finished by the partition's previous owner, as its commit "
            "records (finished_before).",
            ["reason"],
            registry=registry,
        )
        self.results: ports.Counter = Counter(
            _name("results"), "Result records published, by status.", ["status"], registry=registry
        )
        self.dead_letters: ports.Counter = Counter(
            _name("dead_letters"),
            "Dead-letter records published, by status and error category.",
            ["status", "category"],
            registry=registry,
        )
        self.coalesced_events: ports.Counter = Counter(
            _name("coalesced_events"),
            "Events merged into another event's input because their id shared a window.",
            registry=registry,
        )
        self.merged_inputs_split: ports.Counter = Counter(
            _name("merged_inputs_split"),
            "Merged inputs HubSpot rejected, resent one event per input so that only the "
            "events it rejects on their own fail.",
            registry=registry,
        )
        self.dropped_properties: ports.Counter = Counter(
            _name("dropped_properties"),
            "Properties left out of a resent input because HubSpot said they do not exist or "
            "are read-only (ON_INVALID_PROPERTY=drop).",
            registry=registry,
        )
        self.dead_letters_truncated: ports.Counter = Counter(
            _name("dead_letters_truncated"),
            "Dead letters sent with their value cut to fit the dead-letter topic's size limit "
            "(the original stays in the input topic).",
            registry=registry,
        )
        self.end_to_end_seconds: ports.BulkHistogram = BulkHistogram(
            _name("end_to_end_latency_seconds"),
            "From the input event's Kafka timestamp to its result being published.",
            buckets=E2E_SECONDS_BUCKETS,
            registry=registry,
        )

    def _skip_unchanged(self, registry: CollectorRegistry) -> None:
        self.skipped_inputs: ports.Counter = Counter(
            _name("skip_unchanged_inputs"),
            "Inputs not sent because HubSpot already holds every value they set, as this "
            "member last wrote them (SKIP_UNCHANGED); their events' results say unchanged.",
            registry=registry,
        )
        self.skipped_properties: ports.Counter = Counter(
            _name("skip_unchanged_properties"),
            "Properties left out of requests because HubSpot already holds their values: "
            "those of inputs not sent, and those of inputs sent with their changed ones only.",
            registry=registry,
        )
        self.skip_cache_ids: ports.Gauge = Gauge(
            _name("skip_unchanged_cache_ids"),
            "Ids whose last written values SKIP_UNCHANGED remembers (at most "
            "SKIP_UNCHANGED_MAX_IDS).",
            registry=registry,
        )
        self.skip_cache_lookups: ports.Counter = Counter(
            _name("skip_unchanged_cache_lookups"),
            "Inputs compared with what was last written for their id: hit (known), miss.",
            ["result"],
            registry=registry,
        )
        self.skip_cache_evictions: ports.Counter = Counter(
            _name("skip_unchanged_cache_evictions"),
            "Ids forgotten to stay within SKIP_UNCHANGED_MAX_IDS (capacity) or after "
            "SKIP_UNCHANGED_TTL_S (expired).",
            ["reason"],
            registry=registry,
        )

    def _hubspot(self, registry: CollectorRegistry) -> None:
        self.batch_inputs: ports.Histogram = Histogram(
            _name("batch_inputs"),
            "Inputs per upsert request sent to HubSpot.",
            buckets=BATCH_INPUT_BUCKETS,
            registry=registry,
        )
        self.requests: ports.Counter = Counter(
            _name("hubspot_requests"),
            "Upsert requests by HTTP status class (2xx, 4xx, 5xx, error) and outcome.",
            ["status_class", "outcome"],
            registry=registry,
        )
        self.request_seconds: ports.Histogram = Histogram(
            _name("hubspot_request_duration_seconds"),
            "Time for one upsert request to HubSpot.",
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=registry,
        )
        self.retries: ports.Counter = Counter(
            _name("hubspot_retries"), "Requests resent, by reason.", ["reason"], registry=registry
        )
        self.rate_limited: ports.Counter = Counter(
            _name("hubspot_rate_limited"), "429 replies, by policy.", ["policy"], registry=registry
        )
        self.associations: ports.Counter = Counter(
            _name("associations"),
            "Associations the upserted events named, by what became of them (associated, "
            "skipped: the target does not exist and ASSOCIATION_MISSING_TARGET=skip, failed).",
            ["status"],
            registry=registry,
        )
        self.association_requests: ports.Counter = Counter(
            _name("hubspot_association_requests"),
            "Requests for associations: reads of their targets and v4 association batches, by "
            "operation (read, associate) and outcome.",
            ["operation", "outcome"],
            registry=registry,
        )
        self.association_cache: ports.Counter = Counter(
            _name("association_target_lookups"),
            "Association targets looked up in the cache of targets resolved to HubSpot ids, by "
            "result (hit: no read needed, miss).",
            ["result"],
            registry=registry,
        )
        self.auth_failures: ports.Counter = Counter(
            _name("hubspot_auth_failures"), "401 and 403 replies.", ["status"], registry=registry
        )
        # From HubSpot's reply headers: absent until a reply carries them (an OAuth app's
        # replies never carry the daily ones), so no alert reads a 0 nobody reported; and
        # absent again once the reading is out of date, so an idle pod's last word cannot
        # keep an alert firing (the caller says how long each reading holds).
        clock = self._monotonic
        self.ratelimit_remaining: ports.ReportedGauge = ReportedGauge(
            _name("hubspot_ratelimit_remaining"),
            "Requests left in HubSpot's burst window (X-HubSpot-RateLimit-Remaining).",
            registry,
            clock,
        )
        self.ratelimit_max: ports.ReportedGauge = ReportedGauge(
            _name("hubspot_ratelimit_max"),
            "HubSpot's burst limit per window (X-HubSpot-RateLimit-Max).",
            registry,
            clock,
        )
        self.daily_remaining: ports.ReportedGauge = ReportedGauge(
            _name("hubspot_daily_remaining"),
            "Requests left in the account's daily budget (X-HubSpot-RateLimit-Daily-Remaining).",
            registry,
            clock,
        )
        self.daily_limit: ports.ReportedGauge = ReportedGauge(
            _name("hubspot_daily_limit"),
            "The account's daily budget (X-HubSpot-RateLimit-Daily).",
            registry,
            clock,
        )

    def _work(self, registry: CollectorRegistry) -> None:
        self.in_flight_batches: ports.Gauge = Gauge(
            _name("in_flight_batches"), "Batches sent and not yet finished.", registry=registry
        )
        self.buffered_events: ports.Gauge = Gauge(
            _name("buffered_events"),
            "Events consumed whose outcome is not yet delivered.",
            registry=registry,
        )
        self.buffered_bytes: ports.Gauge = Gauge(
            _name("buffered_bytes"),
            "Bytes of events consumed whose outcome is not yet delivered.",
            registry=registry,
        )
        self.ready: ports.Readiness = ReadinessGauge(
            _name("ready"),
            "1 when the service is ready to work (see /readyz), else 0; `reason` says why not.",
            registry,
        )
        self.delivery_errors: ports.Counter = Counter(
            _name("delivery_errors"),
            "Result or dead-letter records the broker refused.",
            registry=registry,
        )

    def _kafka(self, registry: CollectorRegistry) -> None:
        self.paused_partitions: ports.Gauge = Gauge(
            _name("paused_partitions"),
            "Input partitions paused by backpressure.",
            registry=registry,
        )
        per_partition = (
            Gauge(
                _name("consumer_lag"),
                "Messages between the partition's committed position and its end (last "
                "stable offset), reported by the member that owns the partition.",
                ["topic", "partition"],
                registry=registry,
            ),
            Gauge(
                _name("committed_offset"),
                "Last committed offset (next offset to read).",
                ["topic", "partition"],
                registry=registry,
            ),
            Gauge(
                _name("last_commit_timestamp_seconds"),
                "Unix time of the last successful commit.",
                ["topic", "partition"],
                registry=registry,
            ),
        )
        self._per_partition = per_partition  # removed when the partition leaves
        self.consumer_lag: ports.Gauge = per_partition[0]
        self.committed_offset: ports.Gauge = per_partition[1]
        self.last_commit_timestamp: ports.Gauge = per_partition[2]
        self.commits: ports.Counter = Counter(
            _name("commits"), "Offset commits, by outcome.", ["outcome"], registry=registry
        )

    def _schema_registry(self, registry: CollectorRegistry) -> None:
        self.schema_registry_unavailable: ports.Counter = Counter(
            _name("schema_registry_unavailable"),
            "Times a record's schema could not be had from the Schema Registry (unreachable, "
            "5xx, credentials refused): a partition paused at the record, or a retry failed.",
            registry=registry,
        )
        self.registry_paused_partitions: ports.Gauge = Gauge(
            _name("schema_registry_paused_partitions"),
            "Input partitions paused at a record whose schema the Schema Registry could not "
            "give yet.",
            registry=registry,
        )

    def forget_partition(self, tp: tuple[str, int]) -> None:
        """The partition left this member: its series go, so only the owner reports them (a
        frozen lag left behind would add to the group's total and set off alerts)."""
        labels = (tp[0], str(tp[1]))
        for gauge in self._per_partition:
            with suppress(KeyError):  # never set (older prometheus_client raises then)
                gauge.remove(*labels)


class BulkHistogram:
    """A label-less histogram that takes a whole batch of observations under one lock.

    prometheus_client's Histogram takes a lock per observation; the end-to-end latency is
    observed for every event, so the publisher hands it one list per batch instead.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name, self._documentation = name, documentation
        self._bounds = sorted(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        bounds = self._bounds
        counts = [0] * len(self._counts)
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), float(cumulative)))
        yield HistogramMetricFamily(
            self._name, self._documentation, buckets=buckets, sum_value=total
        )


class ReportedGauge:
    """A label-less gauge whose series is exported only while a reported value holds.

    prometheus_client's Gauge reads 0 from the start, which for a value someone else reports
    (HubSpot's remaining budget) would claim a spent budget before any reply said so; and it
    keeps its last value forever, which after HubSpot's daily reset is no longer true.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        registry: CollectorRegistry,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name, self._documentation = name, documentation
        self._monotonic = monotonic
        self._value: float | None = None
        self._expires_at = float("inf")
        registry.register(self)

    def set(self, value: float, valid_for_s: float = float("inf")) -> None:
        """Report `value`; the series disappears `valid_for_s` seconds later unless set again."""
        self._value, self._expires_at = float(value), self._monotonic() + valid_for_s

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._documentation)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._documentation)  # no sample: no series
        value = self._value
        if value is not None and self._monotonic() < self._expires_at:
            family.add_metric([], value)
        yield family


class ReadinessGauge:
    """The readiness gauge: one series, `{reason="ok"} 1` while ready, else 0 with the reason
    (starting, credentials, daily_limit, schema_registry, shutdown), so an alert can say why
    no pod is ready.

    A custom collector rather than a labelled Gauge: the reason series is replaced, never
    added to, so no pod ever exports a stale second reason.
    """

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self._name, self._documentation = name, documentation
        self._reason = STARTING
        registry.register(self)

    def set(self, reason: str) -> None:
        """The current reason (Health.readiness()); READY ("ok") means ready."""
        self._reason = reason

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._documentation, labels=["reason"])

    def collect(self) -> Iterator[Metric]:
        reason = self._reason
        family = GaugeMetricFamily(self._name, self._documentation, labels=["reason"])
        family.add_metric([reason], 1.0 if reason == READY else 0.0)
        yield family


def _le(bound: float) -> str:
    """A bucket's `le` label as Prometheus clients write it ("0.05", "1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(bound)
