"""6. Associations: the API-bound backlog with every event naming its customer's contact.

Shows what associations cost of HubSpot's budget: records/s upserted, requests per record
(upserts, target reads and association batches together), association requests per upsert
request (the target: one per batch of up to 100 links) and reads per distinct customer (the
target: a repeated customer costs no extra read, thanks to the cache).
"""

from __future__ import annotations

from typing import Any

import orjson

from bench.procs import Emulator
from bench.report import Check, ScenarioResult, below, info, number
from bench.scenarios.api_bound import figures
from bench.scenarios.common import Context, run_backlog
from bench.workload import Event, distinct_ids, skewed_events

NAME = "associations"
CUSTOMERS = 2_000  # contacts in HubSpot; each subscription belongs to one of them


def customer_of(sub_id: str) -> str:
    return f"customer-{int(sub_id.removeprefix('sub-')) % CUSTOMERS}@billing.example"


def linked(events: list[Event]) -> list[Event]:
    """The events, each naming its subscription's customer contact."""
    out = []
    for key, value in events:
        document = orjson.loads(value)
        link = {"to": "contacts", "idProperty": "email", "id": customer_of(document["id"])}
        out.append((key, orjson.dumps({**document, "associations": [link]})))
    return out


def seed_customers(emulator: Emulator) -> None:
    emails = [f"customer-{n}@billing.example" for n in range(CUSTOMERS)]
    for start in range(0, CUSTOMERS, 500):
        emulator.control.seed("contacts", [{"email": e} for e in emails[start : start + 500]])


def run(ctx: Context) -> ScenarioResult:
    mode = ctx.mode
    events = linked(skewed_events(mode.api_events, mode.api_pool, seed=1))
    customers = len({customer_of(key.decode()) for key, _ in events})
    ctx.log(f"{NAME}: {len(events):,} events naming {customers:,} customers")
    service_run = run_backlog(
        ctx,
        f"{NAME}-service",
        events,
        kind="service",
        limit=mode.limit,
        latency_ms=mode.latency_ms,
        jitter_ms=mode.jitter_ms,
        prepare=seed_customers,
    )
    by_operation: dict[str, list[Any]] = {}
    for entry in service_run.log:
        by_operation.setdefault(str(entry["operation"]), []).append(entry)
    upserts = [e for e in service_run.log if e["operation"] == "upsert"]
    service_run.log = upserts  # the API-bound figures are about upserted records
    service = figures(service_run, mode.limit.requests, mode.limit.interval_s)
    measured = _measured(service, by_operation, customers)
    result = ScenarioResult(
        NAME,
        config={
            "events": len(events),
            "distinct_ids": distinct_ids(events),
            "customers_named": customers,
            "limit": f"{mode.limit.requests} per {mode.limit.interval_ms} ms",
        },
        measured={"service": service, **measured},
    )
    result.checks = _checks(service, measured)
    return result


def _measured(
    service: dict[str, Any], by_operation: dict[str, list[Any]], customers: int
) -> dict[str, Any]:
    counts = {operation: len(entries) for operation, entries in by_operation.items()}
    records = service["inputs_upserted"] or 0
    upserts = counts.get("upsert", 0)
    associate = counts.get("associate_default", 0)
    reads = counts.get("read", 0)
    read_inputs = sum(int(e["inputs"]) for e in by_operation.get("read", []))
    return {
        "requests_by_operation": counts,
        "requests_per_record": sum(counts.values()) / records if records else None,
        "association_requests_per_upsert_request": associate / upserts if upserts else None,
        "target_reads": reads,
        "targets_read_per_customer": read_inputs / customers if customers else None,
    }


def _checks(service: dict[str, Any], measured: dict[str, Any]) -> list[Check]:
    rate = service["sustained"]["records_per_s"]
    per_record = measured["requests_per_record"]
    per_upsert = measured["association_requests_per_upsert_request"]
    per_customer = measured["targets_read_per_customer"]
    return [
        info("records/s sustained (upserts)", number(rate), rate),
        info("requests per record (all kinds)", number(per_record, 3), per_record),
        below(
            "association requests per upsert request",
            per_upsert,
            1.0 + 1e-9,
            number(per_upsert, 2),
            "<= 1 (100 links a request)",
        ),
        below(
            "targets read per customer",
            per_customer,
            1.0 + 1e-9,
            number(per_customer, 2),
            "<= 1 (cached)",
        ),
        info("requests by kind", str(measured["requests_by_operation"])),
    ]
