"""v4 associations: associate/default, create with labels, read back; shapes, limits, gate."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.emulator import ControlError, FakeClock, RunningEmulator
from devstack.emulator.objectconfig import AssociationType, default_association_types
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, an_input, batch, post_json

BASE = "/crm/v4/associations/subscriptions/contacts/batch"
BILLING = [
    AssociationType("subscriptions", "contacts", 101, "USER_DEFINED", "Billing contact", 102),
    AssociationType("contacts", "subscriptions", 102, "USER_DEFINED", "Billed for", 101),
]


def _seed(emulator: RunningEmulator) -> tuple[str, str, str]:
    """Two subscriptions and a contact: their HubSpot ids."""
    subs = [{"external_subscription_id": s, "hs_name": s} for s in ("s1", "s2")]
    s1, s2 = emulator.control.seed("subscriptions", subs)
    (contact,) = emulator.control.seed("contacts", [{"email": "a@x.io"}])
    return s1, s2, contact


def _pairs(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"inputs": [{"from": {"id": f}, "to": {"id": t}} for f, t in pairs]}


def _labelled(pair: tuple[str, str], *types: tuple[str, int]) -> dict[str, Any]:
    specs = [{"associationCategory": c, "associationTypeId": i} for c, i in types]
    return {"from": {"id": pair[0]}, "to": {"id": pair[1]}, "types": specs}


def test_associate_default_links_both_directions(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    s1, _, contact = _seed(emulator)
    response = post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))

    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "from": {"id": s1},
            "to": {"id": contact},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": 90001,
            },
        },
        {
            "from": {"id": contact},
            "to": {"id": s1},
            "associationSpec": {
                "associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": 90002,
            },
        },
    ]
    links = emulator.control.associations()
    assert {(a["fromObjectType"], a["fromObjectId"], a["typeId"]) for a in links} == {
        ("subscriptions", s1, 90001),
        ("contacts", contact, 90002),
    }
    assert emulator.control.requests()[-1]["applied"] == 1


def test_associating_twice_changes_nothing(emulator: RunningEmulator, upserter: Upserter) -> None:
    s1, _, contact = _seed(emulator)
    first = post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))
    second = post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))

    assert second.json()["results"] == first.json()["results"]
    assert len(emulator.control.associations()) == 2
    assert [e["applied"] for e in emulator.control.requests()] == [1, 0]


def test_a_missing_record_is_an_error_of_its_input_only(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    s1, s2, contact = _seed(emulator)
    body = _pairs((s1, "999"), (s2, contact), ("998", contact))
    response = post_json(upserter, f"{BASE}/associate/default", body)

    assert response.status_code == 200  # the endpoint's only status; errors in the body
    answer = response.json()
    assert [r["from"]["id"] for r in answer["results"]] == [s2, contact]
    assert answer["numErrors"] == 2
    to_missing, from_missing = answer["errors"]
    assert to_missing == {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.OBJECT_NOT_FOUND",
        "message": "No contact with id 999 exists.",
        "context": {
            "fromObjectId": [s1],
            "toObjectId": ["999"],
            "fromObjectType": ["subscription"],
            "toObjectType": ["contact"],
        },
        "errors": [],
        "links": {},
    }
    assert from_missing["message"] == "No subscription with id 998 exists."


def test_a_pair_without_a_default_type_is_a_400(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    path = "/crm/v4/associations/contacts/contacts/batch/associate/default"
    response = post_json(upserter, path, _pairs(("1", "2")))

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_create_adds_labelled_types_and_answers_their_labels(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(association_types=default_association_types() + BILLING)
    s1, _, contact = _seed(emulator)
    body = {"inputs": [_labelled((s1, contact), ("USER_DEFINED", 101))]}
    response = post_json(upserter, f"{BASE}/create", body)

    assert response.status_code == 201
    assert response.json()["results"] == [
        {
            "fromObjectTypeId": "0-69",
            "fromObjectId": s1,
            "toObjectTypeId": "0-1",
            "toObjectId": contact,
            "labels": ["Billing contact"],
        }
    ]
    reverse = emulator.control.associations("contacts", "subscriptions")
    assert [(a["category"], a["typeId"]) for a in reverse] == [("USER_DEFINED", 102)]


@pytest.mark.parametrize(
    ("spec", "named"),
    [(("HUBSPOT_DEFINED", 999), "0-999"), (("USER_DEFINED", 90001), "1-90001")],
    ids=["unknown-id", "wrong-category"],
)
def test_create_with_an_unknown_type_fails_that_input_only(
    emulator: RunningEmulator, upserter: Upserter, spec: tuple[str, int], named: str
) -> None:
    s1, s2, contact = _seed(emulator)
    body = {
        "inputs": [
            _labelled((s1, contact), spec),
            _labelled((s2, contact), ("HUBSPOT_DEFINED", 90001)),
        ]
    }
    response = post_json(upserter, f"{BASE}/create", body)

    assert response.status_code == 207
    answer = response.json()
    assert [r["fromObjectId"] for r in answer["results"]] == [s2]
    (error,) = answer["errors"]
    assert error["subCategory"] == "crm.associations.INVALID_ASSOCIATION_TYPE"
    assert error["message"] == (
        f"{named} is not a valid association type between SUBSCRIPTION and CONTACT"
    )
    assert error["context"] == {
        "type": [named],
        "fromObjectType": ["SUBSCRIPTION"],
        "toObjectType": ["CONTACT"],
    }
    assert {a["fromObjectId"] for a in emulator.control.associations("subscriptions")} == {s2}


def test_read_answers_the_links_and_an_error_for_a_record_without(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(association_types=default_association_types() + BILLING)
    s1, s2, contact = _seed(emulator)
    post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))
    body = {"inputs": [_labelled((s1, contact), ("USER_DEFINED", 101))]}
    post_json(upserter, f"{BASE}/create", body)
    response = post_json(upserter, f"{BASE}/read", {"inputs": [{"id": s1}, {"id": s2}]})

    assert response.status_code == 207
    answer = response.json()
    assert answer["results"] == [
        {
            "from": {"id": s1},
            "to": [
                {
                    "toObjectId": int(contact),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 90001, "label": None},
                        {"category": "USER_DEFINED", "typeId": 101, "label": "Billing contact"},
                    ],
                }
            ],
        }
    ]
    (error,) = answer["errors"]
    assert (error["category"], error["subCategory"]) == (
        "OBJECT_NOT_FOUND",
        "crm.associations.NO_ASSOCIATIONS_FOUND",
    )
    assert error["message"] == f"No contact is associated with subscription {s2}."
    assert error["context"] == {
        "fromObjectId": [s2],
        "fromObjectType": ["subscription"],
        "toObjectType": ["contact"],
    }


def test_the_other_direction_reads_the_inverse_type(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    s1, _, contact = _seed(emulator)
    post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))
    path = "/crm/v4/associations/contacts/subscriptions/batch/read"
    response = post_json(upserter, path, {"inputs": [{"id": contact}]})

    (result,) = response.json()["results"]
    assert result["to"][0]["toObjectId"] == int(s1)
    assert result["to"][0]["associationTypes"][0]["typeId"] == 90002


@pytest.mark.parametrize(
    ("tail", "limit"),
    [("associate/default", 2_000), ("create", 2_000), ("read", 1_000)],
)
def test_batch_limits_are_hubspots(upserter: Upserter, tail: str, limit: int) -> None:
    item = _labelled(("1", "2"), ("HUBSPOT_DEFINED", 90001))
    if tail == "read":
        item = {"id": "1"}
    over = post_json(upserter, f"{BASE}/{tail}", {"inputs": [item] * (limit + 1)})
    at = post_json(upserter, f"{BASE}/{tail}", {"inputs": [item] * limit})

    assert over.status_code == 400
    assert f"is {limit}." in over.json()["message"]
    assert at.status_code in (200, 207)


@pytest.mark.parametrize(
    "path",
    [
        "/crm/v4/associations/0-69/contact/batch/associate/default",
        "/crm/associations/2026-03/subscription/0-1/batch/associate/default",
    ],
    ids=["type-ids-and-singulars", "date-versioned"],
)
def test_association_paths_name_types_as_hubspot_accepts(
    emulator: RunningEmulator, upserter: Upserter, path: str
) -> None:
    s1, _, contact = _seed(emulator)

    assert post_json(upserter, path, _pairs((s1, contact))).status_code == 200
    assert emulator.control.requests()[-1]["objectType"] == "subscriptions"


def test_association_requests_pass_the_gate_and_faults(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=2)
    s1, _, contact = _seed(emulator)
    emulator.control.fault_next("503", operation="associate_default")
    unauthenticated = post_json(upserter, f"{BASE}/read", {"inputs": []}, token=None)
    faulted = post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))
    read = post_json(upserter, f"{BASE}/read", {"inputs": [{"id": s1}]})
    limited = post_json(upserter, f"{BASE}/associate/default", _pairs((s1, contact)))

    assert unauthenticated.status_code == 401
    assert faulted.status_code == 503
    assert emulator.control.associations() == []  # the fault struck before processing
    assert read.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limited.status_code == 429
    assert [e["operation"] for e in emulator.control.requests()] == [
        "read_associations",
        "associate_default",
        "read_associations",
        "associate_default",
    ]


def test_association_types_are_patchable_and_checked(emulator: RunningEmulator) -> None:
    types = emulator.control.config()["association_types"]
    label = {
        "from_object_type": "subscriptions",
        "to_object_type": "contacts",
        "type_id": 7,
        "category": "USER_DEFINED",
        "label": "Owner",
        "inverse_type_id": 8,
    }
    with pytest.raises(ControlError, match="no inverse type"):
        emulator.control.configure(association_types=[*types, label])
    with pytest.raises(ControlError, match="unknown object type"):
        emulator.control.associations("widgets")


def test_an_upserted_record_is_associated_by_the_id_its_upsert_answered(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    upserted = upserter.post(batch(an_input("sub-1"))).json()["results"][0]["id"]
    (contact,) = emulator.control.seed("contacts", [{"email": "a@x.io"}])
    response = post_json(upserter, f"{BASE}/associate/default", _pairs((upserted, contact)))

    assert response.status_code == 200
    assert "errors" not in response.json()
    assert emulator.control.associations("subscriptions")[0]["fromObjectId"] == upserted
