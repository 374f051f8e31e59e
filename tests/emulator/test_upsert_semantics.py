"""Upsert semantics: merge, clear, stable ids, `new`, timestamps, result shape and paths."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from devstack.emulator import RunningEmulator
from devstack.emulator.clock import iso_millis
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import DATED_PATH, ID_PROPERTY, Upserter, an_input, batch

ISO_MILLIS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_first_upsert_creates_records_with_increasing_numeric_ids(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a"), an_input("b"), an_input("c")))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "COMPLETE"
    ids = [r["id"] for r in body["results"]]
    assert all(i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 3
    assert all(r["new"] is True and r["archived"] is False for r in body["results"])


def test_second_upsert_updates_the_same_record_and_keeps_its_id(upserter: Upserter) -> None:
    first = upserter.post(batch(an_input("a", hs_status="active"))).json()["results"][0]
    second = upserter.post(batch(an_input("a", hs_status="past_due"))).json()["results"][0]

    assert second["id"] == first["id"]
    assert second["new"] is False
    assert second["createdAt"] == first["createdAt"]
    assert second["updatedAt"] >= first["updatedAt"]
    assert second["properties"]["hs_status"] == "past_due"


def test_properties_not_sent_are_kept_and_empty_string_clears(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    upserter.post(batch(an_input("a", hs_status="active", hs_currency_code="EUR")))
    item = {"id": "a", "idProperty": ID_PROPERTY, "properties": {"hs_currency_code": ""}}
    result = upserter.post(batch(item)).json()["results"][0]

    assert result["properties"]["hs_status"] == "active"
    assert result["properties"]["hs_currency_code"] == ""
    stored = emulator.control.store()["a"]["properties"]
    assert stored["hs_name"] == "Plan a"
    assert stored["hs_currency_code"] == ""


def test_result_properties_include_id_property_value_and_hs_object_id(upserter: Upserter) -> None:
    result = upserter.post(batch(an_input("sub-1"))).json()["results"][0]

    assert result["properties"][ID_PROPERTY] == "sub-1"
    assert result["properties"]["hs_object_id"] == result["id"]


def test_timestamps_are_iso_utc_with_milliseconds_and_z(upserter: Upserter) -> None:
    body = upserter.post(batch(an_input("a"))).json()
    result = body["results"][0]

    for value in (
        result["createdAt"],
        result["updatedAt"],
        body["startedAt"],
        body["completedAt"],
        body["requestedAt"],
    ):
        assert ISO_MILLIS_Z.match(value), value
    assert body["requestedAt"] <= body["startedAt"] <= body["completedAt"]


def test_trace_ids_are_echoed_per_result_by_default(upserter: Upserter) -> None:
    results = upserter.post(batch(an_input("a"), an_input("b"))).json()["results"]

    assert {r["properties"][ID_PROPERTY]: r["objectWriteTraceId"] for r in results} == {
        "a": "trace-a",
        "b": "trace-b",
    }


def test_trace_id_echo_can_be_switched_off(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(echo_trace_id=False)
    result = upserter.post(batch(an_input("a"))).json()["results"][0]

    assert "objectWriteTraceId" not in result


def test_shuffled_results_still_carry_the_id_property_value_of_each_input(
    start_emulator: StartEmulator,
) -> None:
    _, upserter = start_emulator(shuffle_results=True, seed=7)
    ids = [f"id-{n:02d}" for n in range(30)]
    results = upserter.post(batch(*(an_input(i) for i in ids))).json()["results"]

    returned = [r["properties"][ID_PROPERTY] for r in results]
    assert sorted(returned) == ids
    assert returned != ids  # 30 inputs: the odds of an unchanged order are nil
    assert all(r["objectWriteTraceId"] == f"trace-{r['properties'][ID_PROPERTY]}" for r in results)


def test_date_versioned_path_serves_the_same_records(upserter: Upserter) -> None:
    first = upserter.post(batch(an_input("a"))).json()["results"][0]
    second = upserter.post(batch(an_input("a", hs_status="active")), path=DATED_PATH)

    assert second.status_code == 200
    assert second.json()["results"][0]["id"] == first["id"]


def test_unknown_object_type_is_a_hubspot_shaped_400(upserter: Upserter) -> None:
    response = upserter.post(batch(an_input("a")), path="/crm/v3/objects/widgets/batch/upsert")

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "widgets" in response.json()["message"]


def test_unknown_api_version_is_a_hubspot_shaped_404(upserter: Upserter) -> None:
    path = "/crm/objects/1999-01/subscriptions/batch/upsert"
    response = upserter.post(batch(an_input("a")), path=path)

    assert response.status_code == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


def test_object_types_are_configurable(start_emulator: StartEmulator) -> None:
    _, upserter = start_emulator(object_types=frozenset({"subscriptions", "deals"}))
    response = upserter.post(batch(an_input("a")), path="/crm/v3/objects/deals/batch/upsert")

    assert response.status_code == 200


def test_records_are_keyed_per_object_type(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(object_types=frozenset({"subscriptions", "deals"}))
    upserter.post(batch(an_input("a")))
    deal = upserter.post(batch(an_input("a")), path="/crm/v3/objects/deals/batch/upsert")

    assert deal.json()["results"][0]["new"] is True
    assert set(emulator.control.store("deals")) == {"a"}


def test_an_empty_batch_completes_with_no_results(upserter: Upserter) -> None:
    response = upserter.post({"inputs": []})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_timestamps_are_truncated_to_milliseconds_and_converted_to_utc() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC)
    paris = datetime(2026, 1, 2, 4, 4, 5, 120_500, tzinfo=timezone(timedelta(hours=1)))

    assert iso_millis(moment) == "2026-01-02T03:04:05.999Z"
    assert iso_millis(paris) == "2026-01-02T03:04:05.120Z"
    assert iso_millis(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000Z"
