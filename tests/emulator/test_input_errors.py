"""One bad input of a batch, merged from many events or not: exactly one error naming its
trace id, with the offending property named in the message and in errors[].context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.emulator import DEFAULT_TOKEN, RunningEmulator
from devstack.emulator.config import DEFAULT_READ_ONLY_PROPERTIES
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, an_input, batch

RENEWAL = "hs_recurring_billing_start_date"


def _the_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 207
    (error,) = response.json()["errors"]
    return dict(error)


@pytest.mark.parametrize(
    ("prop", "code", "message"),
    [
        (
            "hs_object_id",
            "READ_ONLY_VALUE",
            "hs_object_id is a read only property; its value cannot be set.",
        ),
        ("no_such_prop", "PROPERTY_DOESNT_EXIST", 'Property "no_such_prop" does not exist'),
    ],
    ids=["read-only", "unknown"],
)
def test_a_merged_input_with_one_bad_property_is_one_error_naming_it(
    emulator: RunningEmulator, upserter: Upserter, prop: str, code: str, message: str
) -> None:
    upserter.post(batch(an_input("a", hs_status="active")))
    merged = an_input("a", trace="t-merged", hs_status="canceled", hs_currency_code="EUR")
    merged["properties"][prop] = "x"
    error = _the_error(upserter.post(batch(an_input("b"), merged)))

    assert error["context"] == {"objectWriteTraceId": ["t-merged"]}
    assert error["errors"] == [
        {"message": message, "code": code, "context": {"propertyName": [prop]}}
    ]
    assert f'"error":"{code}","name":"{prop}"' in error["message"]
    assert json.dumps(message)[1:-1] in error["message"]
    stored = emulator.control.store()
    assert stored["a"]["properties"]["hs_status"] == "active"  # nothing of the input applied
    assert "hs_currency_code" not in stored["a"]["properties"]
    assert "b" in stored


def test_two_bad_properties_of_one_input_are_still_one_error(upserter: Upserter) -> None:
    bad = an_input("a", trace="t-a", hs_object_id="1", nope="2")
    error = _the_error(upserter.post(batch(bad, an_input("b"))))

    assert [(d["code"], d["context"]["propertyName"]) for d in error["errors"]] == [
        ("READ_ONLY_VALUE", ["hs_object_id"]),
        ("PROPERTY_DOESNT_EXIST", ["nope"]),
    ]


def test_read_only_properties_can_be_set_at_run_time(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    read_only = [*DEFAULT_READ_ONLY_PROPERTIES, RENEWAL]
    emulator.control.configure(read_only_properties=read_only)
    error = _the_error(
        upserter.post(batch(an_input("a", **{RENEWAL: "2026-01-01"}), an_input("b")))
    )

    assert error["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert error["errors"][0]["context"] == {"propertyName": [RENEWAL]}
    emulator.control.configure(read_only_properties=sorted(DEFAULT_READ_ONLY_PROPERTIES))
    assert upserter.post(batch(an_input("a", **{RENEWAL: "2026-01-01"}))).status_code == 200


def test_other_object_types_have_their_own_read_only_properties(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator()
    schemas = emulator.control.config()["object_schemas"]
    schemas["contacts"]["read_only_properties"].append("lifecyclestage")
    schemas["contacts"]["known_properties"].append("lifecyclestage")
    emulator.control.configure(object_schemas=schemas)
    item = {
        "id": "a@x.io",
        "idProperty": "email",
        "objectWriteTraceId": "t1",
        "properties": {"lifecyclestage": "customer"},
    }
    path = "/crm/v3/objects/contacts/batch/upsert"
    error = _the_error(upserter.post({"inputs": [item]}, path=path))

    assert error["errors"][0]["code"] == "READ_ONLY_VALUE"


def test_the_400_without_trace_ids_names_each_property_too(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a", trace=None, nope="1")))

    assert response.status_code == 400
    assert response.json()["errors"][0]["context"] == {"propertyName": ["nope"]}


def test_official_client_reads_the_offending_property(emulator: RunningEmulator) -> None:
    from hubspot import Client
    from hubspot.crm.objects import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        BatchResponseSimplePublicUpsertObjectWithErrors,
        SimplePublicObjectBatchInputUpsert,
    )

    def item(id_value: str, **props: str) -> Any:
        return SimplePublicObjectBatchInputUpsert(
            id=id_value,
            id_property="external_subscription_id",
            object_write_trace_id=f"t-{id_value}",
            properties={"hs_name": "Plan", **props},
        )

    client = Client.create(
        access_token=DEFAULT_TOKEN, host=emulator.url, client_side_validation=True
    )
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[item("a"), item("b", hs_createdate="2026-01-01")]
    )
    response = client.crm.objects.batch_api.upsert(
        object_type="subscriptions", batch_input_simple_public_object_batch_input_upsert=request
    )

    assert isinstance(response, BatchResponseSimplePublicUpsertObjectWithErrors)
    (error,) = response.errors
    assert error.context == {"objectWriteTraceId": ["t-b"]}
    assert error.errors[0].context == {"propertyName": ["hs_createdate"]}
    assert error.errors[0].code == "READ_ONLY_VALUE"
