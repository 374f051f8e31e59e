"""docs/operations.md's metrics table lists exactly the metrics the service registers, with
their types and labels, as a scrape shows them."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from service.adapters.prometheus import Metrics
from tests.docs.markdown import DOCS, code_names, table

HEADER = ["Name", "Type", "Labels", "Meaning"]
# What a scrape appends to a family's name (histograms show theirs per sample, not here).
SCRAPED_SUFFIX = {"counter": "_total", "info": "_info", "gauge": "", "histogram": ""}


def registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Scraped name -> (type, label names) of every metric a fresh `Metrics` registers."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    labels = _label_names(metrics)
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in registry.collect():
        if family.type == "info":  # an info's labels are its sample's
            names = tuple(family.samples[0].labels)
        else:
            names = labels.get(family.name, ())
        found[family.name + SCRAPED_SUFFIX[family.type]] = (family.type, names)
    return found


def _label_names(metrics: Metrics) -> dict[str, tuple[str, ...]]:
    """Family name -> label names of the labelled metrics (prometheus_client keeps them on the
    parent, which exports no sample until a child exists)."""
    parents = [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]
    return {parent._name: tuple(parent._labelnames) for parent in parents}


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    rows = table((DOCS / "operations.md").read_text(), HEADER)
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in rows:
        match = re.fullmatch(r"`(subscription_upserter_[a-z_]+)`", row["Name"])
        assert match, f"not one metric name: {row['Name']}"
        assert match.group(1) not in found, f"{match.group(1)} is listed twice"
        # label names are the cell's code spans; values in parentheses are not in code
        found[match.group(1)] = (row["Type"], tuple(code_names(row["Labels"])))
    return found


def test_the_metrics_table_lists_exactly_the_registered_metrics() -> None:
    assert set(documented()) == set(registered())


def test_the_metrics_table_gives_each_metric_its_type_and_labels() -> None:
    doc, code = documented(), registered()
    wrong = {name: (doc[name], code[name]) for name in doc.keys() & code.keys()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    assert wrong == {}, "documented (type, labels) vs registered"
