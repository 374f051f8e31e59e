"""Content faults (a status for any upsert carrying a given property value, normal answers
for the rest) and a total outage, both switched on and off at run time."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devstack.emulator import ControlError, FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import ID_PROPERTY, Upserter, an_input, batch, post_json

READ = "/crm/v3/objects/contacts/batch/read"
ASSOCIATE = "/crm/v4/associations/subscriptions/contacts/batch/associate/default"


def test_a_content_rule_answers_its_status_to_the_poisoned_batch_only(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    rules = emulator.control.add_content_fault("hs_name", "poison-1", 500)
    poisoned = upserter.post(batch(an_input("a"), an_input("b", hs_name="poison-1")))
    clean = upserter.post(batch(an_input("a"), an_input("c")))

    assert rules == [
        {
            "property": "hs_name",
            "equals": "poison-1",
            "status": 500,
            "when": "before",
            "object_type": None,
        }
    ]
    assert (poisoned.status_code, clean.status_code) == (500, 200)
    assert set(emulator.control.store()) == {"a", "c"}  # "before": nothing of it stored
    assert [e["fault"] for e in emulator.control.requests()] == ["500", None]


def test_a_content_rule_matches_an_input_by_its_id(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.add_content_fault(ID_PROPERTY, "poison-2", 503)

    assert upserter.post(batch(an_input("poison-2"))).status_code == 503
    assert upserter.post(batch(an_input("fine", hs_status="poison-2"))).status_code == 200


def test_a_content_rule_can_strike_after_storing(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.add_content_fault("hs_name", "poison", 502, when="after")
    response = upserter.post(batch(an_input("a", hs_name="poison")))

    assert response.status_code == 502
    assert set(emulator.control.store()) == {"a"}
    assert emulator.control.requests()[-1]["applied"] == 1


def test_a_content_rule_can_hold_the_request_then_time_out(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(timeout_hold_seconds=0.3)
    emulator.control.add_content_fault("hs_name", "slow", "timeout")
    started = time.monotonic()
    response = upserter.post(batch(an_input("a", hs_name="slow")))

    assert response.status_code == 504
    assert time.monotonic() - started >= 0.3


def test_a_content_rule_can_be_limited_to_one_object_type(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.add_content_fault("firstname", "Eve", 500, object_type="contacts")
    contact = {"id": "e@x.io", "idProperty": "email", "properties": {"firstname": "Eve"}}
    path = "/crm/v3/objects/contacts/batch/upsert"

    assert post_json(upserter, path, {"inputs": [contact]}).status_code == 500
    assert emulator.control.config()["content_faults"][0]["object_type"] == "contacts"


def test_content_rules_leave_queued_faults_for_the_next_requests(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.add_content_fault("hs_name", "poison", 500)
    emulator.control.fault_next("423")
    statuses = [
        upserter.post(batch(an_input("a", hs_name="poison"))).status_code,
        upserter.post(batch(an_input("b"))).status_code,
        upserter.post(batch(an_input("c"))).status_code,
    ]

    assert statuses == [500, 423, 200]


def test_content_rules_are_cleared_and_checked(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.add_content_fault("hs_name", "poison", 500)
    emulator.control.clear_content_faults()

    assert upserter.post(batch(an_input("a", hs_name="poison"))).status_code == 200
    with pytest.raises(ControlError, match="unknown status"):
        emulator.control.add_content_fault("hs_name", "poison", 418)
    assert emulator.control.config()["content_faults"] == []


def _every_endpoint(upserter: Upserter, token: str | None = "default") -> list[int]:
    bodies: list[tuple[str, Any]] = [
        ("/crm/v3/objects/subscriptions/batch/upsert", batch(an_input("a"))),
        (READ, {"inputs": [{"id": "1"}]}),
        (ASSOCIATE, {"inputs": [{"from": {"id": "1"}, "to": {"id": "2"}}]}),
    ]
    return [post_json(upserter, path, body, token=token).status_code for path, body in bodies]


def test_an_outage_answers_every_request_until_it_ends(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(clock=FakeClock())
    emulator.control.outage("503")
    during = _every_endpoint(upserter)
    unauthenticated = _every_endpoint(upserter, token=None)
    response = post_json(upserter, READ, {"inputs": []})

    assert during == unauthenticated == [503, 503, 503]
    assert "X-HubSpot-RateLimit-Remaining" not in response.headers
    assert emulator.control.stats()["window"]["current"] == 0  # no budget used
    assert emulator.control.store() == {}
    emulator.control.end_outage()
    assert _every_endpoint(upserter) == [200, 207, 200]


def test_an_outage_can_drop_connections(emulator: RunningEmulator, upserter: Upserter) -> None:
    import httpx

    emulator.control.outage("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        upserter.post(batch(an_input("a")))

    assert emulator.control.requests()[-1]["fault"] == "drop"
    with pytest.raises(ControlError, match="outage"):
        emulator.control.outage("418")
