"""Associations on the real broker and the HubSpot emulator (its objects and v4 association
endpoints): every existing target associated exactly once with the right subscription,
missing targets per policy, the rate limit kept across upserts and associations together,
nothing lost and per-id order kept; and associations named by the event mapping, for Avro
events read through a Schema Registry."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka.schema_registry import SchemaRegistryClient

from devstack.emulator import RunningEmulator
from devstack.emulator.config import DEFAULT_KNOWN_PROPERTIES
from devstack.examples.billing import (
    CUSTOM_PROPERTIES,
    MAPPING_FILE,
    avro_serializers,
    subscription_events,
)
from tests.integration.support import (
    Topics,
    new_topics,
    produce,
    read_all,
    results_by_source,
    running_service,
    service_env,
    wait_until,
)

pytestmark = [pytest.mark.kafka]

EVENTS = 2_000
SUBSCRIPTIONS = 200
CONTACTS, MISSING_CONTACTS = 30, 10  # customers' contacts, and some not (yet) in HubSpot
COMPANIES, MISSING_COMPANIES = 10, 2


def _contact(n: int) -> str:
    return f"c-{n % (CONTACTS + MISSING_CONTACTS)}@billing.example"


def _company(n: int) -> str:
    return f"cust-{n % (COMPANIES + MISSING_COMPANIES)}"


def _events() -> list[tuple[bytes | None, bytes | None]]:
    versions: Counter[int] = Counter()
    events: list[tuple[bytes | None, bytes | None]] = []
    for n in range(EVENTS):
        sub = (n * 7) % SUBSCRIPTIONS
        versions[sub] += 1
        links = [
            {"to": "contacts", "idProperty": "email", "id": _contact(sub)},
            {"to": "companies", "idProperty": "external_customer_id", "id": _company(sub)},
        ]
        document = {
            "id": f"sub-{sub:03d}",
            "properties": {"hs_name": "Plan", "hs_amount": str(versions[sub])},
            "associations": links,
        }
        events.append((f"sub-{sub:03d}".encode(), orjson.dumps(document)))
    return events


def _seed(emulator: RunningEmulator) -> tuple[dict[str, str], dict[str, str]]:
    """Contacts and companies that exist: their HubSpot ids by unique value."""
    emails = [f"c-{n}@billing.example" for n in range(CONTACTS)]
    customers = [f"cust-{n}" for n in range(COMPANIES)]
    contact_ids = emulator.control.seed("contacts", [{"email": e} for e in emails])
    company_ids = emulator.control.seed(
        "companies", [{"external_customer_id": c, "name": c} for c in customers]
    )
    return dict(zip(emails, contact_ids, strict=True)), dict(
        zip(customers, company_ids, strict=True)
    )


def test_subscriptions_are_associated_with_their_contacts_and_companies(
    kafka_bootstrap: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    contacts, companies = _seed(emulator)
    topics = new_topics(kafka_bootstrap, partitions=3)
    produce(kafka_bootstrap, topics.input, _events())
    env = service_env(kafka_bootstrap, topics, emulator.url, ASSOCIATION_MISSING_TARGET="fail")
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(lambda: len(results_by_source(kafka_bootstrap, topics.output)) >= EVENTS,
                   180, "every result")  # fmt: skip
        lookups = service.samples("subscription_upserter_association_target_lookups_total")
        hits = lookups.get('{result="hit"}', 0.0)
        assert service.stop() == 0

    subscriptions = {sub_id: r["hubspotId"] for sub_id, r in emulator.control.store().items()}
    _assert_linked_once(emulator, "contacts", subscriptions, contacts, _contact)
    _assert_linked_once(emulator, "companies", subscriptions, companies, _company)
    _assert_results(kafka_bootstrap, topics, contacts, companies)
    requests = emulator.control.requests()
    assert [r for r in requests if r["status"] == 429] == [], "one budget for all of it"
    by_operation = Counter(str(r["operation"]) for r in requests)
    assert by_operation["associate_default"] <= by_operation["upsert"] * 2  # per batch, per type
    assert hits > 0, "a repeated customer is not read again"
    for sub_id, writes in emulator.control.history().items():
        versions = [int(w["properties"]["hs_amount"]) for w in writes]
        assert all(b > a for a, b in itertools.pairwise(versions)), sub_id


def _assert_linked_once(
    emulator: RunningEmulator,
    to_type: str,
    subscriptions: dict[str, str],
    targets: dict[str, str],
    target_of: object,
) -> None:
    assert callable(target_of)
    links = Counter(
        (link["fromObjectId"], link["toObjectId"])
        for link in emulator.control.associations("subscriptions", to_type)
    )
    expected = {
        (hubspot_id, targets[target_of(int(sub_id.removeprefix("sub-")))])
        for sub_id, hubspot_id in subscriptions.items()
        if target_of(int(sub_id.removeprefix("sub-"))) in targets
    }
    assert set(links) == expected
    assert set(links.values()) == {1}, "each association exists exactly once"


def _assert_results(
    bootstrap: str, topics: Topics, contacts: dict[str, str], companies: dict[str, str]
) -> None:
    by_source = results_by_source(bootstrap, topics.output)
    assert len(by_source) == EVENTS and all(len(docs) == 1 for docs in by_source.values())
    failed_events = 0
    for [result] in by_source.values():
        assert result["status"] == "upserted", result
        listed = result["associations"]
        assert isinstance(listed, list) and len(listed) == 2
        for association in listed:
            exists = association["id"] in contacts or association["id"] in companies
            assert association["status"] == ("associated" if exists else "failed"), association
        failed_events += any(a["status"] == "failed" for a in listed)
    dead = read_all(bootstrap, topics.dlq)
    assert len(dead) == failed_events > 0
    assert {d.headers["error.category"] for d in dead} == {b"ASSOCIATION_FAILED"}


# -- associations named by the event mapping, for registry events (issue 17's mapping) ---------

LINKS = [
    {"to": "contacts", "idProperty": "email", "id": "customer.email"},
    {"to": "companies", "idProperty": "external_customer_id", "id": "customer.id"},
]


def test_registry_events_are_associated_as_their_mapping_names(
    kafka_bootstrap: str,
    emulator: RunningEmulator,
    schema_registry: SchemaRegistryClient,
    schema_registry_url: str,
    tmp_path: Path,
) -> None:
    # The billing example's Avro events, with the example mapping plus `associations`: each
    # subscription linked to its customer's contact (by e-mail; some events have none) and
    # company (by customer id); a third of the customers are not in HubSpot (policy skip).
    emulator.control.configure(
        known_properties=sorted(DEFAULT_KNOWN_PROPERTIES | CUSTOM_PROPERTIES)
    )
    events = subscription_events(150, 30, seed=5)
    customers = {e.subscription_id: (e.customer_email, e.customer_id) for e in events}
    present = [sub for n, sub in enumerate(sorted(customers)) if n % 3]
    emails = sorted({email for sub in present if (email := customers[sub][0]) is not None})
    contacts = dict(zip(emails, emulator.control.seed("contacts", [{"email": e} for e in emails]),
                        strict=True))  # fmt: skip
    ids = sorted({customers[sub][1] for sub in present})
    seeded = emulator.control.seed("companies", [{"external_customer_id": c} for c in ids])
    companies = dict(zip(ids, seeded, strict=True))
    assert contacts and companies and len(companies) < len(customers)
    mapping = yaml.safe_load(MAPPING_FILE.read_text()) | {"associations": LINKS}
    (mapping_file := tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    topics = new_topics(kafka_bootstrap, partitions=3)
    serialize = avro_serializers(schema_registry, topics.input)
    produce(kafka_bootstrap, topics.input,
            [(e.subscription_id.encode(), serialize(e)) for e in events])  # fmt: skip
    env = service_env(
        kafka_bootstrap, topics, emulator.url, INPUT_FORMAT="avro",
        SCHEMA_REGISTRY_URL=schema_registry_url, EVENT_MAPPING_FILE=str(mapping_file),
        ASSOCIATION_MISSING_TARGET="skip",
    )  # fmt: skip
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(lambda: len(results_by_source(kafka_bootstrap, topics.output)) >= len(events),
                   120, "every result")  # fmt: skip
        assert service.stop() == 0

    subscriptions = {sub_id: r["hubspotId"] for sub_id, r in emulator.control.store().items()}
    assert set(subscriptions) == set(customers)
    _assert_linked_once(emulator, "contacts", subscriptions, contacts,
                        lambda n: customers[f"sub-{n:05d}"][0])  # fmt: skip
    _assert_linked_once(emulator, "companies", subscriptions, companies,
                        lambda n: customers[f"sub-{n:05d}"][1])  # fmt: skip
    for [result] in results_by_source(kafka_bootstrap, topics.output).values():
        assert result["status"] == "upserted", result
        email, customer_id = customers[str(result["id"])]
        associations = result["associations"]
        assert isinstance(associations, list)
        listed = {(a["to"], a["id"]): a["status"] for a in associations}
        expected = {
            ("companies", customer_id): "associated" if customer_id in companies else "skipped"
        }
        if email is not None:
            expected[("contacts", email)] = "associated" if email in contacts else "skipped"
        assert listed == expected, result
    assert read_all(kafka_bootstrap, topics.dlq) == []
