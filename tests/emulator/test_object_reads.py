"""Batch read by HubSpot id or unique property, batch create, and seeding by the control API."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.emulator import ControlError, FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, post_json

READ = "/crm/v3/objects/contacts/batch/read"
CREATE = "/crm/v3/objects/contacts/batch/create"


def _read(ids: list[str], id_property: str | None = "email", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": [{"id": i} for i in ids], **extra}
    if id_property is not None:
        body["idProperty"] = id_property
    return body


def test_records_are_read_by_a_unique_property(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    ids = emulator.control.seed("contacts", [{"email": "a@x.io"}, {"email": "b@x.io"}])
    response = post_json(upserter, READ, _read(["b@x.io", "a@x.io"], properties=["email"]))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert "errors" not in body
    by_email = {r["properties"]["email"]: r["id"] for r in body["results"]}
    assert by_email == {"a@x.io": ids[0], "b@x.io": ids[1]}


def test_missing_records_are_one_object_not_found_error_listing_them(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.seed("contacts", [{"email": "a@x.io"}])
    response = post_json(upserter, READ, _read(["x@x.io", "a@x.io", "y@x.io"]))

    assert response.status_code == 207
    body = response.json()
    assert len(body["results"]) == 1
    assert body["numErrors"] == 1
    assert body["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ["x@x.io", "y@x.io"]},
            "errors": [],
            "links": {},
        }
    ]


def test_records_are_read_by_hubspot_id_without_id_property(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    (hubspot_id,) = emulator.control.seed("contacts", [{"email": "a@x.io"}])
    response = post_json(upserter, READ, _read([hubspot_id, "999"], id_property=None))

    assert response.status_code == 207
    assert [r["id"] for r in response.json()["results"]] == [hubspot_id]
    assert response.json()["errors"][0]["context"] == {"ids": ["999"]}


def test_only_the_properties_asked_for_are_answered(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.seed("contacts", [{"email": "a@x.io", "firstname": "Ann"}])
    asked = post_json(upserter, READ, _read(["a@x.io"], properties=["lastname", "nope"]))
    unasked = post_json(upserter, READ, _read(["a@x.io"]))

    shown = asked.json()["results"][0]["properties"]
    assert shown.pop("lastname") is None  # the type has it; this record has no value
    assert set(shown) == {"hs_object_id", "hs_createdate", "hs_lastmodifieddate"}
    assert "email" not in unasked.json()["results"][0]["properties"]


def test_a_read_holds_at_most_100_inputs(emulator: RunningEmulator, upserter: Upserter) -> None:
    too_many = post_json(upserter, READ, _read([f"{n}@x.io" for n in range(101)]))
    enough = post_json(upserter, READ, _read([f"{n}@x.io" for n in range(100)]))

    assert too_many.status_code == 400
    assert too_many.json()["category"] == "VALIDATION_ERROR"
    assert too_many.json()["message"].startswith(
        "The maximum number of inputs supported in a batch request is 100."
    )
    assert enough.status_code == 207


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_read(["Ann"], id_property="firstname"), "non-unique 0-1 property firstname"),
        ({"inputs": [{}]}, "inputs[0].id is required"),
        ({"inputs": "a"}, "`inputs` array"),
        (_read(["a"], properties="email"), "properties must be an array"),
    ],
    ids=["non-unique-id-property", "no-id", "inputs-not-array", "properties-not-array"],
)
def test_bad_reads_are_validation_errors(upserter: Upserter, body: Any, message: str) -> None:
    response = post_json(upserter, READ, body)

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert message in response.json()["message"]


def test_reads_share_the_gate_and_the_one_rate_budget(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=2)
    unauthenticated = post_json(upserter, READ, _read(["a@x.io"]), token=None)
    upsert = {"inputs": [{"id": "a@x.io", "idProperty": "email", "properties": {}}]}
    upserted = post_json(upserter, "/crm/v3/objects/contacts/batch/upsert", upsert)
    read = post_json(upserter, READ, _read(["a@x.io"]))
    limited = post_json(upserter, READ, _read(["a@x.io"]))

    assert unauthenticated.status_code == 401
    assert upserted.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert read.status_code == 200
    assert read.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limited.status_code == 429
    operations = [e["operation"] for e in emulator.control.requests()]
    assert operations == ["read", "upsert", "read", "read"]


def test_a_queued_fault_can_wait_for_its_operation(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.fault_next("503", operation="read")
    upsert = {"inputs": [{"id": "a@x.io", "idProperty": "email", "properties": {}}]}
    first = post_json(upserter, "/crm/v3/objects/contacts/batch/upsert", upsert)
    second = post_json(upserter, READ, _read(["a@x.io"]))

    assert (first.status_code, second.status_code) == (200, 503)
    assert emulator.control.pending_faults() == []
    with pytest.raises(ControlError, match="unknown operation"):
        emulator.control.fault_next("503", operation="reads")


def test_batch_create_makes_records_readable_by_id_and_unique_value(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    created = post_json(upserter, CREATE, {"inputs": [{"properties": {"email": "a@x.io"}}]})

    assert created.status_code == 201
    result = created.json()["results"][0]
    assert result["properties"]["email"] == "a@x.io"
    assert emulator.control.store("contacts")[result["id"]]["idProperty"] == "hs_object_id"
    read = post_json(upserter, READ, _read(["a@x.io"]))
    assert read.json()["results"][0]["id"] == result["id"]


def test_batch_create_refuses_a_taken_unique_value_with_hubspots_409(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    (existing,) = emulator.control.seed("contacts", [{"email": "a@x.io"}])
    response = post_json(upserter, CREATE, {"inputs": [{"properties": {"email": "a@x.io"}}]})

    assert response.status_code == 409
    assert response.json()["category"] == "CONFLICT"
    assert response.json()["message"] == f"Contact already exists. Existing ID: {existing}"
    assert len(emulator.control.store("contacts")) == 1


@pytest.mark.parametrize(
    "item",
    [
        {"properties": {"nope": "1"}},
        {"properties": {"hs_object_id": "1"}},
        {"properties": {"email": "a@x.io"}, "associations": [{"to": {"id": "1"}, "types": []}]},
    ],
    ids=["unknown-property", "read-only", "associations"],
)
def test_batch_create_refuses_the_whole_batch_for_one_bad_input(
    emulator: RunningEmulator, upserter: Upserter, item: dict[str, Any]
) -> None:
    good = {"properties": {"email": "b@x.io"}}
    response = post_json(upserter, CREATE, {"inputs": [good, item]})

    assert response.status_code == 400
    assert emulator.control.store("contacts") == {}


def test_seeding_checks_properties_and_unique_values(emulator: RunningEmulator) -> None:
    emulator.control.seed("companies", [{"external_customer_id": "c-1", "name": "Acme"}])

    with pytest.raises(ControlError, match="already exists"):
        emulator.control.seed("companies", [{"external_customer_id": "c-1"}])
    with pytest.raises(ControlError, match="does not exist"):
        emulator.control.seed("companies", [{"colour": "red"}])
    with pytest.raises(ControlError, match="unknown object type"):
        emulator.control.seed("widgets", [{}])
    assert emulator.control.stats()["requests"] == 0  # seeding is not HubSpot traffic
