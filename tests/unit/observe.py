"""Driving the loop turn by turn and reading it from the outside, as an operator or a reader
of its topics would: the metrics registry it updates and the records it published. The loop
refreshes its gauges once a second of its clock, so a gauge is read after a turn one second
later (`refreshed_gauge`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import orjson

from service.adapters.prometheus import Metrics
from service.loop.pipeline import Pipeline
from tests.unit.fake_kafka import FakeSink, FakeSource

GAUGE_INTERVAL_S = 1.0


class SteppedClock(Protocol):
    def advance(self, seconds: float) -> None: ...


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    """Every sample of `name` (without the prefix), by its label values."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == f"subscription_upserter_{name}"
    }


def gauge(metrics: Metrics, name: str, **labels: str) -> float:
    """A gauge's value (`name` without the prefix) as last set; 0 when never set."""
    value = metrics.registry.get_sample_value(f"subscription_upserter_{name}", labels)
    return value or 0.0


def refreshed_gauge(pipeline: Pipeline, clock: SteppedClock, metrics: Metrics, name: str) -> float:
    """A gauge as one more turn, a gauge interval later, reports it."""
    clock.advance(GAUGE_INTERVAL_S)
    pipeline.step()
    return gauge(metrics, name)


def results(sink: FakeSink, topic: str = "out") -> list[dict[str, object]]:
    """The result records the sink received on `topic`, decoded."""
    return [orjson.loads(r.value or b"") for r in sink.records if r.topic == topic]


def step_until(
    pipeline: Pipeline,
    done: Callable[[], object],
    clock: SteppedClock | None = None,
    tick_s: float = 0.0,
) -> None:
    """Turn the loop until `done()` (failing after 10 s), moving `clock` by `tick_s` a turn."""
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "the loop did not get there"
        pipeline.step()
        if clock is not None:
            clock.advance(tick_s)
        time.sleep(0.001)


def committed_to_the_end(source: FakeSource) -> bool:
    """Everything in the source's partitions was handed over and committed."""
    ends: dict[tuple[str, int], int] = {}
    for m in source.messages:
        ends[(m.topic, m.partition)] = max(ends.get((m.topic, m.partition), 0), m.offset + 1)
    return source.drained and all(source.committed_offsets.get(tp) == e for tp, e in ends.items())
