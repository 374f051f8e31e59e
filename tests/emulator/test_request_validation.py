"""Whole-request 400s, and per-input problems as a 207 (unique trace ids on all inputs) or
a 400 (any input untraced, or a trace id shared)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devstack.emulator import RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import ID_PROPERTY, Upserter, an_input, batch, spec_checker

UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def test_duplicate_ids_reject_the_whole_request_with_hubspots_body(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(an_input("123"), an_input("9"), an_input("123", trace="x")))

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["status", "message", "context", "category", "correlationId"]
    assert body["status"] == "error"
    assert body["message"] == "Duplicate IDs found in batch input: [123]. IDs must be unique"
    assert body["context"] == {"ids": ["123"]}
    assert body["category"] == "VALIDATION_ERROR"
    assert emulator.control.store() == {}


def test_every_duplicated_id_is_listed_once(upserter: Upserter) -> None:
    inputs = [an_input(i, trace=f"t{n}") for n, i in enumerate(["a", "b", "a", "b", "a", "c"])]
    body = upserter.post(batch(*inputs)).json()

    assert body["message"] == "Duplicate IDs found in batch input: [a, b]. IDs must be unique"
    assert body["context"] == {"ids": ["a", "b"]}


def test_more_than_100_inputs_is_a_validation_error(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(*(an_input(f"id-{n}") for n in range(101))))

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "100" in response.json()["message"]
    assert emulator.control.store() == {}


def test_exactly_100_inputs_are_accepted(upserter: Upserter) -> None:
    response = upserter.post(batch(*(an_input(f"id-{n}") for n in range(100))))

    assert response.status_code == 200
    assert len(response.json()["results"]) == 100


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b"{}",
        b'{"inputs": {}}',
        b'{"inputs": [{"idProperty": "external_subscription_id", "properties": {}}]}',
        b'{"inputs": [{"id": "a", "idProperty": "external_subscription_id"}]}',
        b'{"inputs": [{"id": 5, "idProperty": "external_subscription_id", "properties": {}}]}',
        b'{"inputs": ["a"]}',
    ],
    ids=[
        "malformed",
        "array",
        "no-inputs",
        "inputs-object",
        "no-id",
        "no-properties",
        "numeric-id",
        "input-not-object",
    ],
)
def test_malformed_bodies_are_validation_errors(upserter: Upserter, raw: bytes) -> None:
    response = upserter.post_raw(raw)

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    spec_checker().check_response(response)


def test_id_property_that_is_not_unique_rejects_the_whole_request(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(an_input("a"), an_input("b", id_property="hs_name")))

    assert response.status_code == 400
    assert response.json()["message"] == (
        "Unable to perform update/upsert by non-unique 0-69 property hs_name"
    )
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert emulator.control.store() == {}


def test_unique_id_properties_are_configurable(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(unique_id_properties=frozenset({"billing_ref"}))

    assert upserter.post(batch(an_input("a", id_property="billing_ref"))).status_code == 200
    assert upserter.post(batch(an_input("b"))).status_code == 400


def test_input_without_id_property_is_rejected(upserter: Upserter) -> None:
    item = {"id": "a", "properties": {"hs_name": "x"}}
    response = upserter.post(batch(item))

    assert response.status_code == 400
    assert "idProperty" in response.json()["message"]


def _single_error(body: dict[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = body["errors"]
    assert len(errors) == 1
    return errors[0]


def test_unknown_property_on_traced_inputs_is_a_207_and_good_inputs_are_applied(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(an_input("good"), an_input("bad", x="1")))

    assert response.status_code == 207
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert [r["properties"][ID_PROPERTY] for r in body["results"]] == ["good"]
    assert body["numErrors"] == 1
    error = _single_error(body)
    assert error == {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": 'Property values were not valid: [{"isValid":false,"message":'
        '"Property \\"x\\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"x"}]',
        "context": {"objectWriteTraceId": ["trace-bad"]},
        "errors": [
            {
                "message": 'Property "x" does not exist',
                "code": "PROPERTY_DOESNT_EXIST",
                "context": {"propertyName": ["x"]},
            }
        ],
        "links": {},
    }
    assert set(emulator.control.store()) == {"good"}


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"hs_object_id": "5"}, "READ_ONLY_VALUE"),
        ({"hs_lastmodifieddate": "2026-01-01"}, "READ_ONLY_VALUE"),
        ({"hs_amount": 12}, "INVALID_STRING"),
        ({"hs_status": None}, "INVALID_STRING"),
        ({"hs_status": "x" * 65_537}, "INVALID_STRING_LENGTH"),
    ],
    ids=["read-only-id", "read-only-date", "number", "null", "too-long"],
)
def test_invalid_property_values_are_per_input_errors(
    upserter: Upserter, props: dict[str, object], code: str
) -> None:
    bad = an_input("bad")
    bad["properties"].update(props)
    response = upserter.post(batch(an_input("ok"), bad), check_request=False)

    assert response.status_code == 207
    error = _single_error(response.json())
    assert [e["code"] for e in error["errors"]] == [code]
    assert f'"error":"{code}"' in error["message"]


def test_value_of_exactly_65536_characters_is_accepted(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a", hs_status="x" * 65_536)))

    assert response.status_code == 200


def test_value_lengths_are_limited_one_by_one_not_in_total(upserter: Upserter) -> None:
    inputs = [an_input(f"id-{n}", hs_status="x" * 40_000, hs_amount="y" * 40_000) for n in range(3)]
    response = upserter.post(batch(*inputs))

    assert response.status_code == 200


def test_an_empty_required_property_counts_as_missing_on_create(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a", hs_name="")))

    assert response.status_code == 207
    assert _single_error(response.json())["errors"][0]["code"] == "REQUIRED_PROPERTY"


def test_creating_without_a_required_property_fails_but_updating_without_it_works(
    upserter: Upserter,
) -> None:
    nameless = {
        "id": "a",
        "idProperty": ID_PROPERTY,
        "objectWriteTraceId": "t1",
        "properties": {"hs_status": "active"},
    }
    created = upserter.post(batch(nameless))
    assert created.status_code == 207
    assert _single_error(created.json())["errors"][0]["code"] == "REQUIRED_PROPERTY"

    upserter.post(batch(an_input("a")))
    updated = upserter.post(batch(nameless))
    assert updated.status_code == 200


def test_one_bad_input_without_trace_ids_fails_the_whole_batch_and_applies_nothing(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(
        batch(an_input("good", trace=None), an_input("bad", trace=None, x="1"))
    )

    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: [")
    assert "context" not in body
    assert emulator.control.store() == {}


def test_a_single_untraced_input_turns_multi_status_off(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(an_input("good"), an_input("bad", trace=None, x="1")))

    assert response.status_code == 400
    assert emulator.control.store() == {}


def test_all_inputs_bad_with_trace_ids_is_a_207_with_no_results(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a", x="1"), an_input("b", y="2")))

    assert response.status_code == 207
    body = response.json()
    assert body["results"] == []
    assert body["numErrors"] == 2
    traces = sorted(e["context"]["objectWriteTraceId"][0] for e in body["errors"])
    assert traces == ["trace-a", "trace-b"]


def test_error_correlation_ids_are_uuids(upserter: Upserter) -> None:
    body = upserter.post(batch(an_input("1"), an_input("1", trace="t"))).json()

    assert re.match(UUID, body["correlationId"])


def test_request_body_builders_match_hubspots_input_schema() -> None:
    spec_checker().check("BatchInputSimplePublicObjectBatchInputUpsert", batch(an_input("a")))
    assert spec_checker().errors(
        "BatchInputSimplePublicObjectBatchInputUpsert", json.loads('{"inputs": [{"id": "a"}]}')
    )


def test_shared_trace_ids_do_not_turn_multi_status_on(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post(batch(an_input("good", trace="T"), an_input("bad", trace="T", x="1")))

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert emulator.control.store() == {}
