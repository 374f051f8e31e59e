"""Injected faults (queued and random, before or after processing) and latency."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from devstack.emulator import FAULT_KINDS, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import AUTH, V3_PATH, Upserter, an_input, batch

STATUS_FAULTS = [kind for kind in FAULT_KINDS if kind.isdigit()]


@pytest.mark.parametrize("status", STATUS_FAULTS)
def test_queued_status_fault_before_processing_answers_it_and_stores_nothing(
    emulator: RunningEmulator, upserter: Upserter, status: str
) -> None:
    emulator.control.fault_next(status, count=1, when="before")
    response = upserter.post(batch(an_input("a")))

    assert response.status_code == int(status)
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] and body["message"] and body["correlationId"]
    assert emulator.control.store() == {}
    assert ("Retry-After" in response.headers) == (status == "477")


def test_477_carries_retry_after_seconds(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(retry_after_seconds=3)
    emulator.control.fault_next("477")

    assert upserter.post(batch(an_input("a"))).headers["Retry-After"] == "3"


def test_fault_after_processing_stores_the_batch_but_answers_an_error(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.fault_next("503", when="after")
    response = upserter.post(batch(an_input("a"), an_input("b")))

    assert response.status_code == 503
    assert set(emulator.control.store()) == {"a", "b"}
    log = emulator.control.requests()[-1]
    assert (log["status"], log["fault"], log["applied"]) == (503, "503", 2)


def test_queued_faults_hit_exactly_the_next_n_requests(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    emulator.control.fault_next("502", count=2)
    emulator.control.fault_next("423", count=1)
    statuses = [upserter.post(batch(an_input("a"))).status_code for _ in range(4)]

    assert statuses == [502, 502, 423, 200]
    assert emulator.control.pending_faults() == []


def test_timeout_fault_holds_past_the_client_timeout_then_answers_504(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(timeout_hold_seconds=0.6)
    emulator.control.fault_next("timeout", when="after")
    with pytest.raises(httpx.ReadTimeout):
        upserter.http.post(V3_PATH, json=batch(an_input("a")), headers=AUTH, timeout=0.2)

    assert set(emulator.control.store()) == {"a"}  # applied: the outcome is unknown
    emulator.control.fault_next("timeout")
    started = time.monotonic()
    response = upserter.post(batch(an_input("b")))
    assert response.status_code == 504
    assert time.monotonic() - started >= 0.6
    assert "b" not in emulator.control.store()


@pytest.mark.parametrize("when", ["before", "after"])
def test_drop_fault_closes_the_connection_without_an_answer(
    emulator: RunningEmulator, upserter: Upserter, when: str
) -> None:
    emulator.control.fault_next("drop", when=when)
    with pytest.raises(httpx.RemoteProtocolError):
        upserter.post(batch(an_input("a")))

    assert ("a" in emulator.control.store()) == (when == "after")
    assert emulator.control.requests()[-1]["status"] is None
    assert upserter.post(batch(an_input("b"))).status_code == 200  # the server lives on


def test_random_faults_follow_the_configured_rates(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(
        fault_rates={"503": 0.3, "500": 0.2}, seed=11, rate_limit_max=None
    )
    statuses = [upserter.post(batch(an_input("a"))).status_code for _ in range(300)]

    assert 60 <= statuses.count(503) <= 120
    assert 30 <= statuses.count(500) <= 90
    assert statuses.count(200) == 300 - statuses.count(503) - statuses.count(500)
    emulator.control.configure(fault_rates={})
    assert upserter.post(batch(an_input("a"))).status_code == 200


def test_random_fault_moment_is_configurable(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(fault_rates={"500": 1.0}, fault_when="after")

    assert upserter.post(batch(an_input("a"))).status_code == 500
    assert set(emulator.control.store()) == {"a"}


def test_unknown_fault_is_refused_by_the_control_api(emulator: RunningEmulator) -> None:
    from devstack.emulator import ControlError

    with pytest.raises(ControlError, match="unknown fault"):
        emulator.control.fault_next("418")
    with pytest.raises(ControlError, match="when"):
        emulator.control.fault_next("503", when="during")


def test_latency_is_added_without_blocking_other_requests(start_emulator: StartEmulator) -> None:
    emulator, _ = start_emulator(latency_ms=300, jitter_ms=50)

    async def burst() -> float:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(client.post(V3_PATH, json=batch(an_input(f"id-{n}"))) for n in range(10))
            )
            assert {a.status_code for a in answers} == {200}
            return time.monotonic() - started

    elapsed = asyncio.run(burst())
    assert 0.3 <= elapsed < 1.5  # ten concurrent requests, not ten times the latency


def test_latency_can_be_changed_at_run_time(emulator: RunningEmulator, upserter: Upserter) -> None:
    emulator.control.configure(latency_ms=250)
    started = time.monotonic()
    upserter.post(batch(an_input("a")))

    assert time.monotonic() - started >= 0.25
