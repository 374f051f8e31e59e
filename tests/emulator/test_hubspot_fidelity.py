"""Fidelity to HubSpot's own artefacts: its OpenAPI specs and its official Python client.

The specs are copied unchanged into tests/data/hubspot-openapi (SHA256SUMS there records
their digests as copied; a test keeps them so). Every test in this suite
already checks the bodies it sends and receives against them (see `support.Upserter`); the
tests here make sure that checker bites, and drive the emulator with `hubspot-api-client`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import pytest

from devstack.emulator import DEFAULT_TOKEN, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import SPEC_DIR, SPEC_FILES, Upserter, an_input, batch, spec_checker


def _recorded_digests() -> dict[str, str]:
    """SHA256SUMS: the digests of the files as copied (`sha256sum` output)."""
    lines = (SPEC_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines)}


@pytest.mark.parametrize("name", [*SPEC_FILES, "README.md"])
def test_spec_copies_are_unchanged(name: str) -> None:
    recorded = _recorded_digests()
    assert name in recorded, f"{name} has no digest in SHA256SUMS"
    assert hashlib.sha256((SPEC_DIR / name).read_bytes()).hexdigest() == recorded[name]


def test_the_spec_checker_rejects_a_result_missing_required_fields(upserter: Upserter) -> None:
    body = upserter.post(batch(an_input("a"))).json()
    del body["results"][0]["new"]
    body["completedAt"] = "yesterday"

    problems = spec_checker().errors("BatchResponseSimplePublicUpsertObject", body)
    assert any("'new' is a required property" in p for p in problems)
    assert any("date-time" in p for p in problems)


def test_the_spec_checker_rejects_an_error_without_correlation_id() -> None:
    problems = spec_checker().errors("Error", {"message": "x", "category": "VALIDATION_ERROR"})

    assert any("correlationId" in p for p in problems)


def test_category_variant_429_body_matches_the_full_error_schema(
    start_emulator: StartEmulator,
) -> None:
    _, upserter = start_emulator(rate_limit_max=1, rate_limit_body="category")
    upserter.post(batch(an_input("a")))
    response = upserter.post(batch(an_input("a")))

    assert response.status_code == 429
    spec_checker().check("Error", response.json())


def test_default_429_body_is_hubspots_documented_one_without_category(
    start_emulator: StartEmulator,
) -> None:
    # HubSpot's documented TEN_SECONDLY_ROLLING body has no `category`, though `Error`
    # requires it: the emulator sends the documented body, and it matches `Error` otherwise.
    _, upserter = start_emulator(rate_limit_max=1)
    upserter.post(batch(an_input("a")))
    body = upserter.post(batch(an_input("a"))).json()

    assert "category" not in body
    assert spec_checker().errors("Error", body) == [
        f"urn:hubspot-spec:{name}: $: 'category' is a required property" for name in SPEC_FILES
    ]


# --- HubSpot's official Python client, pointed at the emulator ------------------------------


def _official_batch_api(emulator: RunningEmulator, token: str = DEFAULT_TOKEN) -> Any:
    from hubspot import Client

    client = Client.create(access_token=token, host=emulator.url, client_side_validation=True)
    return client.crm.objects.batch_api


def _official_input(id_value: str, trace: str | None = None, **props: str) -> Any:
    from hubspot.crm.objects import SimplePublicObjectBatchInputUpsert

    return SimplePublicObjectBatchInputUpsert(
        id=id_value,
        id_property="external_subscription_id",
        object_write_trace_id=trace,
        properties={"hs_name": f"Plan {id_value}", **props},
    )


def test_official_client_parses_a_200_upsert(emulator: RunningEmulator) -> None:
    from hubspot.crm.objects import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        BatchResponseSimplePublicUpsertObject,
    )

    api = _official_batch_api(emulator)
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[_official_input("a", "t-a", hs_status="active"), _official_input("b", "t-b")]
    )
    response = api.upsert(
        object_type="subscriptions", batch_input_simple_public_object_batch_input_upsert=request
    )

    assert isinstance(response, BatchResponseSimplePublicUpsertObject)
    assert response.status == "COMPLETE"
    by_id = {r.properties["external_subscription_id"]: r for r in response.results}
    assert set(by_id) == {"a", "b"}
    assert by_id["a"].new is True
    assert by_id["a"].properties["hs_status"] == "active"
    assert by_id["a"].object_write_trace_id == "t-a"
    assert isinstance(by_id["a"].created_at, datetime)
    assert isinstance(response.completed_at, datetime)
    assert set(emulator.control.store()) == {"a", "b"}


def test_official_client_parses_a_207_with_errors(emulator: RunningEmulator) -> None:
    from hubspot.crm.objects import (
        BatchInputSimplePublicObjectBatchInputUpsert,
        BatchResponseSimplePublicUpsertObjectWithErrors,
    )

    api = _official_batch_api(emulator)
    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[_official_input("good", "t-good"), _official_input("bad", "t-bad", nope="1")]
    )
    response = api.upsert(
        object_type="subscriptions", batch_input_simple_public_object_batch_input_upsert=request
    )

    assert isinstance(response, BatchResponseSimplePublicUpsertObjectWithErrors)
    assert response.num_errors == 1
    assert response.errors[0].context == {"objectWriteTraceId": ["t-bad"]}
    assert response.errors[0].errors[0].code == "PROPERTY_DOESNT_EXIST"
    assert [r.properties["external_subscription_id"] for r in response.results] == ["good"]


def test_official_client_raises_on_whole_request_errors(emulator: RunningEmulator) -> None:
    from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert
    from hubspot.crm.objects.exceptions import ApiException

    request = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[_official_input("dup"), _official_input("dup")]
    )
    with pytest.raises(ApiException) as bad_request:
        _official_batch_api(emulator).upsert(
            object_type="subscriptions", batch_input_simple_public_object_batch_input_upsert=request
        )
    with pytest.raises(ApiException) as unauthorized:
        _official_batch_api(emulator, token="nope").upsert(
            object_type="subscriptions", batch_input_simple_public_object_batch_input_upsert=request
        )

    assert bad_request.value.status == 400
    assert "Duplicate IDs found in batch input: [dup]" in bad_request.value.body
    assert unauthorized.value.status == 401
