"""Associations of upserted subscriptions with contacts, companies and deals: targets resolved
by a unique property (cached), links made in batches, missing targets per policy, failures
reported without undoing the upsert."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from service.core.associations import ApiPaths, TargetCache, found_targets, refused_links
from service.core.associations import Link as AssocLink
from service.core.clock import FakeClock
from service.core.codec import decode_event
from service.core.model import (
    AssociationRef,
    AssociationStatus,
    Batch,
    BatchInput,
    Event,
    Rejection,
    Status,
)
from service.core.records import Topics, records_for_input
from service.core.responses import HttpReply
from service.core.retry import Backoff
from service.loop.associator import AssociationPolicy, MissingTargetPolicy
from service.loop.caller import UpsertCaller
from tests.unit.factories import LIMITS, raw
from tests.unit.fakes import TEST_POLICY, counted, make_caller, ok_for, reply

PATHS = ApiPaths("v3", "subscriptions")
CONTACT = AssociationRef("contacts", "email", "a@x.io")
COMPANY = AssociationRef("companies", "domain", "x.io")
BILLING = AssociationRef("contacts", "email", "b@x.io", type_id=101, category="USER_DEFINED")
GHOST = AssociationRef("contacts", "email", "nobody@x.io")


class FakeCrm:
    """HubSpot's upsert, object batch read by a unique property, and v4 association batches,
    answered as HubSpot does; records the links it holds."""

    def __init__(self, records: dict[tuple[str, str], str]) -> None:
        self.records = records  # (object type, unique value) -> HubSpot id
        self.links: set[tuple[str, str, str, int | None]] = set()
        self.calls: list[tuple[str, int]] = []  # (operation, inputs)

    def __call__(self, path: str | None, request: dict[str, Any]) -> HttpReply:
        inputs = request["inputs"]
        if path is None:
            self.calls.append(("upsert", len(inputs)))
            return ok_for(request)
        if path.endswith("/batch/read"):
            self.calls.append(("read", len(inputs)))
            return self._read(path.split("/")[4], request)
        self.calls.append(("associate", len(inputs)))
        return self._associate(path.split("/")[5], inputs, labelled=path.endswith("create"))

    def _read(self, object_type: str, request: dict[str, Any]) -> HttpReply:
        prop = request["idProperty"]
        found, missing = [], []
        for item in request["inputs"]:
            hubspot_id = self.records.get((object_type, item["id"]))
            if hubspot_id is None:
                missing.append(item["id"])
            else:
                found.append({"id": hubspot_id, "properties": {prop: item["id"]}})
        body: dict[str, object] = {"status": "COMPLETE", "results": found}
        if missing:
            body["errors"] = [
                {"category": "OBJECT_NOT_FOUND", "message": "missing", "context": {"ids": missing}}
            ]
        return reply(207 if missing else 200, body)

    def _associate(self, to_type: str, inputs: list[Any], *, labelled: bool) -> HttpReply:
        for item in inputs:
            type_id = item["types"][0]["associationTypeId"] if labelled else None
            self.links.add((item["from"]["id"], to_type, item["to"]["id"], type_id))
        return reply(201 if labelled else 200, {"status": "COMPLETE", "results": []})


class RoutedTransport:
    def __init__(self, crm: FakeCrm) -> None:
        self.crm = crm

    def post(self, body: bytes, path: str | None = None) -> HttpReply:
        return self.crm(path, orjson.loads(body))

    def close(self) -> None:
        return


def _event(sub_id: str, offset: int, refs: Iterable[AssociationRef]) -> Event:
    document = {
        "id": sub_id,
        "properties": {"hs_name": "x"},
        "associations": [ref.to_json() for ref in refs],
    }
    decoded = decode_event(raw(document, offset), LIMITS)
    assert isinstance(decoded, Event)
    return decoded


def _batch(*events: Event) -> Batch:
    inputs = [BatchInput(e.id, e.id_property, e.trace_id, e.properties, [e]) for e in events]
    return Batch(1, inputs, 0.0)


def _caller(
    crm: FakeCrm, missing: MissingTargetPolicy = MissingTargetPolicy.FAIL
) -> tuple[UpsertCaller, Any]:
    policy = AssociationPolicy(
        PATHS, missing, retry_s=30.0, backoff=Backoff(1.0, 4.0, rand=lambda: 1.0)
    )
    caller, metrics, _ = make_caller(
        RoutedTransport(crm), FakeClock(), policy=TEST_POLICY, associations=policy
    )
    return caller, metrics


def test_events_name_associations_and_bad_ones_are_invalid() -> None:
    event = _event("sub-1", 0, [CONTACT, BILLING, CONTACT])
    assert event.associations == (CONTACT, BILLING)  # each once
    for bad, where in [
        ("not a list", "must be an array"),
        ([{"to": "contacts", "idProperty": "email"}], "associations[0].id"),
        ([{"to": "con tacts", "idProperty": "email", "id": "a"}], "associations[0].to"),
        ([{"to": "contacts", "idProperty": "email", "id": "a", "typeId": "1"}], "typeId"),
    ]:
        rejected = decode_event(raw({"id": "s", "properties": {}, "associations": bad}, 1), LIMITS)
        assert isinstance(rejected, Rejection) and rejected.category == "INVALID_ASSOCIATIONS"
        assert where in rejected.message


def test_upserted_subscriptions_are_associated_with_the_targets_they_name() -> None:
    crm = FakeCrm({("contacts", "a@x.io"): "501", ("companies", "x.io"): "601",
                   ("contacts", "b@x.io"): "502"})  # fmt: skip
    caller, metrics = _caller(crm)
    outcome = caller.execute(_batch(_event("sub-1", 0, [CONTACT, COMPANY, BILLING])))
    [trace] = outcome.by_trace_id
    results = outcome.associations[trace]
    assert {ref: r.status for ref, r in results.items()} == dict.fromkeys(
        (CONTACT, COMPANY, BILLING), AssociationStatus.ASSOCIATED
    )
    assert crm.links == {
        ("h-sub-1", "contacts", "501", None),
        ("h-sub-1", "companies", "601", None),
        ("h-sub-1", "contacts", "502", 101),
    }
    assert counted(metrics, "associations", status="associated") == 3


def test_a_repeated_customer_is_read_once_and_links_go_a_hundred_a_request() -> None:
    crm = FakeCrm({("contacts", "a@x.io"): "501"})
    caller, metrics = _caller(crm)
    events = [_event(f"sub-{n}", n, [CONTACT]) for n in range(150)]
    caller.execute(_batch(*events[:100]))
    caller.execute(_batch(*events[100:]))
    assert crm.calls == [("upsert", 100), ("read", 1), ("associate", 100),
                         ("upsert", 50), ("associate", 50)]  # fmt: skip
    assert counted(metrics, "association_target_lookups", result="hit") == 1


@pytest.mark.parametrize(
    ("policy", "status"),
    [(MissingTargetPolicy.FAIL, AssociationStatus.FAILED),
     (MissingTargetPolicy.SKIP, AssociationStatus.SKIPPED)],
)  # fmt: skip
def test_a_target_that_does_not_exist_fails_or_is_skipped_per_policy(
    policy: MissingTargetPolicy, status: AssociationStatus
) -> None:
    crm = FakeCrm({("contacts", "a@x.io"): "501"})
    caller, _ = _caller(crm, policy)
    outcome = caller.execute(_batch(_event("sub-1", 0, [CONTACT, GHOST])))
    [trace] = outcome.by_trace_id
    assert outcome.by_trace_id[trace].status is Status.UPSERTED  # the upsert stands
    assert outcome.associations[trace][GHOST].status is status
    assert outcome.associations[trace][CONTACT].status is AssociationStatus.ASSOCIATED


def test_with_retry_a_target_created_meanwhile_is_found_and_one_never_created_fails() -> None:
    crm = FakeCrm({})
    caller, _ = _caller(crm, MissingTargetPolicy.RETRY)
    reads = 0
    original = crm._read

    def created_on_third_read(object_type: str, request: dict[str, Any]) -> HttpReply:
        nonlocal reads
        reads += 1
        if reads == 3:
            crm.records[("contacts", "a@x.io")] = "501"
        return original(object_type, request)

    crm._read = created_on_third_read  # type: ignore[method-assign]
    outcome = caller.execute(_batch(_event("sub-1", 0, [CONTACT, GHOST])))
    [trace] = outcome.by_trace_id
    assert outcome.associations[trace][CONTACT].status is AssociationStatus.ASSOCIATED
    failed = outcome.associations[trace][GHOST]
    assert failed.status is AssociationStatus.FAILED and failed.error is not None
    assert "nobody@x.io" in failed.error.message


def test_a_failed_association_is_listed_and_dead_lettered_while_the_result_is_upserted() -> None:
    crm = FakeCrm({("contacts", "a@x.io"): "501"})
    caller, _ = _caller(crm)
    batch = _batch(_event("sub-1", 0, [CONTACT, GHOST]))
    outcome = caller.execute(batch)
    item = batch.inputs[0]
    [[result, dead]] = records_for_input(
        item, outcome.by_trace_id[item.trace_id], Topics("out", "dlq"),
        outcome.associations[item.trace_id],
    )  # fmt: skip
    document = orjson.loads(result.value or b"")
    assert document["status"] == "upserted"
    assert [(a["id"], a["status"]) for a in document["associations"]] == [
        ("a@x.io", "associated"),
        ("nobody@x.io", "failed"),
    ]
    headers = dict(dead.headers or [])
    assert dead.topic == "dlq" and headers["error.category"] == b"ASSOCIATION_FAILED"
    assert b"nobody@x.io" in headers["error.message"]


def test_replies_are_read_by_value_and_errors_name_their_links() -> None:
    document: dict[str, Any] = {
        "results": [{"id": 7, "properties": {"email": "b@x.io"}}, {"id": "8", "properties": {}}]
    }
    assert found_targets(document, "email") == {"b@x.io": "7"}
    links = [AssocLink("1", "7", CONTACT), AssocLink("1", "8", COMPANY)]
    named: dict[str, Any] = {"errors": [{"category": "OBJECT_NOT_FOUND", "message": "gone",
                         "context": {"toObjectId": ["8"]}}]}  # fmt: skip
    assert list(refused_links(named, links, 207)) == [links[1]]
    unnamed: dict[str, Any] = {"errors": [{"category": "VALIDATION_ERROR", "message": "bad type"}]}
    assert list(refused_links(unnamed, links, 207)) == links


def test_paths_follow_the_api_version() -> None:
    assert PATHS.read("contacts") == "/crm/v3/objects/contacts/batch/read"
    assert PATHS.associate("companies", labelled=False) == (
        "/crm/v4/associations/subscriptions/companies/batch/associate/default"
    )
    dated = ApiPaths("2026-03", "subscriptions")
    assert dated.read("deals") == "/crm/objects/2026-03/deals/batch/read"
    assert dated.associate("deals", labelled=True) == (
        "/crm/associations/2026-03/subscriptions/deals/batch/create"
    )


def test_the_target_cache_is_bounded_and_expires() -> None:
    cache = TargetCache(max_entries=2, ttl_s=10.0)
    cache.put(("contacts", "email", "a"), "1", now=0.0)
    cache.put(("contacts", "email", "b"), "2", now=0.0)
    assert cache.get(("contacts", "email", "a"), now=1.0) == "1"  # a is now the newest
    cache.put(("contacts", "email", "c"), "3", now=1.0)
    assert cache.get(("contacts", "email", "b"), now=1.0) is None  # the oldest went
    assert cache.get(("contacts", "email", "a"), now=11.0) is None  # expired
    assert len(cache) == 1


def test_a_target_another_worker_is_reading_is_waited_for_not_read_again() -> None:
    cache = TargetCache(max_entries=10, ttl_s=60.0)
    key, gone, unanswered = (
        ("contacts", "email", "a"),
        ("contacts", "email", "x"),
        ("contacts", "email", "y"),
    )
    mine, theirs = cache.claim([key, gone, unanswered])
    assert (mine, theirs) == ([key, gone, unanswered], [])
    assert cache.claim([key]) == ([], [key])  # another worker: it waits instead of reading
    waited: list[object] = []
    waiter = threading.Thread(target=lambda: waited.append(cache.awaited(key, 5.0, now=0.0)))
    waiter.start()
    cache.settle([key, gone, unanswered], {key: "501", gone: None}, now=0.0)
    waiter.join(5)
    assert waited == ["501"]
    assert cache.awaited(gone, 1.0, now=0.0) is None  # read, and not found
    assert cache.awaited(unanswered, 1.0, now=0.0) is False  # no answer: read it yourself
