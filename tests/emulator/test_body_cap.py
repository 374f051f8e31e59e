"""The configurable request-body byte cap: an oversized body is answered after the gate.

HubSpot documents no byte limit, so the emulator's cap (`max_body_bytes`) is a knob. A body
over it is a 413 VALIDATION_ERROR in HubSpot's `Error` shape, with the rate-limit headers,
counted and logged like any other answer; credentials and limits are checked first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from devstack.emulator import EmulatorConfig, FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter, an_input, batch, spec_checker

CAP = 1024


def _oversized() -> bytes:
    raw = json.dumps(batch(an_input("big", hs_status="x" * CAP))).encode()
    assert len(raw) > CAP
    return raw


def _start(start_emulator: StartEmulator, **fields: object) -> tuple[RunningEmulator, Upserter]:
    return start_emulator(clock=FakeClock(), max_body_bytes=CAP, **fields)


def test_the_cap_defaults_to_64_mib() -> None:
    assert EmulatorConfig().max_body_bytes == 64 * 1024 * 1024


def test_a_bad_token_is_a_401_before_the_body_is_judged(start_emulator: StartEmulator) -> None:
    _, upserter = _start(start_emulator)
    response = upserter.post_raw(_oversized(), token="wrong-token")

    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


def test_an_oversized_body_is_a_413_validation_error_in_hubspots_error_shape(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = _start(start_emulator, rate_limit_max=5)
    response = upserter.post_raw(_oversized())

    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    spec_checker().check("Error", body)
    assert body["category"] == "VALIDATION_ERROR"
    assert str(CAP) in body["message"]
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "4"
    assert "X-HubSpot-RateLimit-Daily" in response.headers
    assert emulator.control.store() == {}


def test_an_oversized_chunked_body_without_a_length_is_a_413(
    start_emulator: StartEmulator,
) -> None:
    _, upserter = _start(start_emulator)

    def chunks() -> Iterator[bytes]:
        raw = _oversized()
        yield from (raw[start : start + 256] for start in range(0, len(raw), 256))

    response = upserter.http.post(
        "/crm/v3/objects/subscriptions/batch/upsert",
        content=chunks(),
        headers={"Authorization": "Bearer emulator-token", "Content-Type": "application/json"},
    )

    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    spec_checker().check("Error", response.json())


def test_an_oversized_body_is_logged_and_counted(start_emulator: StartEmulator) -> None:
    emulator, upserter = _start(start_emulator)
    upserter.post_raw(_oversized())

    assert [entry["status"] for entry in emulator.control.requests()] == [413]
    assert emulator.control.stats()["byStatus"] == {"413": 1}


def test_a_body_at_the_cap_is_accepted(start_emulator: StartEmulator) -> None:
    _, upserter = _start(start_emulator)
    raw = json.dumps(batch(an_input("a"))).encode()
    padded = raw[:-1] + b" " * (CAP - len(raw)) + raw[-1:]

    assert len(padded) == CAP
    assert upserter.post_raw(padded).status_code == 200


def test_the_cap_can_be_changed_at_run_time(start_emulator: StartEmulator) -> None:
    emulator, upserter = _start(start_emulator)
    emulator.control.configure(max_body_bytes=4 * CAP)

    assert upserter.post_raw(_oversized()).status_code == 200
