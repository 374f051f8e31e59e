"""The control API: store, history, request log, stats, config patches, resets."""

from __future__ import annotations

import httpx
import pytest

from devstack.emulator import ControlError, FakeClock, RunningEmulator
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import DATED_PATH, ID_PROPERTY, Upserter, an_input, batch


def test_store_lists_records_by_id_value(emulator: RunningEmulator, upserter: Upserter) -> None:
    result = upserter.post(batch(an_input("a", hs_status="active"))).json()["results"][0]
    record = emulator.control.store()["a"]

    assert record["hubspotId"] == result["id"]
    assert record["idProperty"] == ID_PROPERTY
    assert record["properties"]["hs_status"] == "active"
    assert record["createdAt"] == result["createdAt"]
    assert record["updatedAt"] == result["updatedAt"]


def test_store_keeps_the_creation_time_and_shows_the_latest_write(
    start_emulator: StartEmulator,
) -> None:
    clock = FakeClock()
    emulator, upserter = start_emulator(clock=clock)
    first = upserter.post(batch(an_input("a"))).json()["results"][0]
    clock.advance(2.5)
    second = upserter.post(batch(an_input("a", hs_status="active"))).json()["results"][0]
    record = emulator.control.store()["a"]

    assert second["updatedAt"] != first["updatedAt"]
    assert record["createdAt"] == first["createdAt"] == second["createdAt"]
    assert record["updatedAt"] == second["updatedAt"]
    assert record["properties"]["hs_lastmodifieddate"] == second["updatedAt"]
    assert record["properties"]["hs_createdate"] == first["createdAt"]


def test_history_keeps_every_write_per_id_in_order(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    upserter.post(batch(an_input("a", trace="t1", hs_status="active")))
    upserter.post(batch(an_input("b", trace="t2")))
    upserter.post(batch(an_input("a", trace="t3", hs_status="canceled")))
    history = emulator.control.history()

    assert [w["traceId"] for w in history["a"]] == ["t1", "t3"]
    assert [w["properties"]["hs_status"] for w in history["a"]] == ["active", "canceled"]
    assert [w["requestSeq"] for w in history["a"]] == [1, 3]
    assert history["a"][0]["at"] <= history["a"][1]["at"]


def test_history_can_be_switched_off_for_long_benchmarks(start_emulator: StartEmulator) -> None:
    emulator, upserter = start_emulator(record_history=False)
    upserter.post(batch(an_input("a")))

    assert emulator.control.history() == {}
    assert set(emulator.control.store()) == {"a"}


def test_request_log_records_every_upsert_request(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    upserter.post(batch(an_input("a"), an_input("b")))
    upserter.post(batch(an_input("c", trace=None)), path=DATED_PATH)
    upserter.post(batch(an_input("a")), token=None)
    log = emulator.control.requests()

    assert [e["seq"] for e in log] == [1, 2, 3]
    assert [e["status"] for e in log] == [200, 200, 401]
    assert [e["inputs"] for e in log] == [2, 1, 1]
    assert log[0]["traceIds"] == ["trace-a", "trace-b"]
    assert log[1]["traceIds"] == [None]
    assert log[1]["path"] == DATED_PATH
    assert all(e["receivedAt"] <= e["answeredAt"] for e in log)


def test_control_calls_are_not_logged_as_upserts(emulator: RunningEmulator) -> None:
    emulator.control.store()
    emulator.control.stats()

    assert emulator.control.requests() == []


def test_stats_count_statuses_inputs_and_window_use(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(clock=FakeClock())
    upserter.post(batch(an_input("a"), an_input("b")))
    upserter.post(batch(an_input("a", x="1")))
    upserter.post(batch(an_input("a")), token=None)
    stats = emulator.control.stats()

    assert stats["requests"] == 3
    assert stats["byStatus"] == {"200": 1, "207": 1, "401": 1}
    assert stats["inputs"] == 4
    assert stats["inputsApplied"] == 2
    assert stats["window"]["current"] == 3
    assert max(stats["window"]["peakByToken"].values()) == 2
    assert "emulator-token" not in str(stats)  # tokens show as digests


def test_control_api_needs_no_token_and_is_never_rate_limited(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(clock=FakeClock(), rate_limit_max=1)
    upserter.post(batch(an_input("a")))
    for _ in range(20):
        assert httpx.get(f"{emulator.url}/_emulator/stats").status_code == 200

    assert upserter.post(batch(an_input("a"))).status_code == 429


def test_config_patch_changes_behaviour_and_is_returned(emulator: RunningEmulator) -> None:
    config = emulator.control.configure(shuffle_results=True, rate_limit_max=50)

    assert config["shuffle_results"] is True
    assert emulator.control.config()["rate_limit_max"] == 50


@pytest.mark.parametrize(
    "patch",
    [
        {"no_such_field": 1},
        {"rate_limit_max": -1},
        {"fault_rates": {"418": 0.5}},
        {"fault_rates": {"500": 0.8, "503": 0.5}},
        {"latency_ms": "slow"},
    ],
    ids=["unknown-key", "negative-limit", "unknown-fault", "rates-over-1", "bad-type"],
)
def test_bad_config_patches_are_refused_and_change_nothing(
    emulator: RunningEmulator, patch: dict[str, object]
) -> None:
    before = emulator.control.config()
    with pytest.raises(ControlError):
        emulator.control.configure(**patch)

    assert emulator.control.config() == before


def test_reset_forgets_records_history_log_counts_and_queued_faults(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    first = upserter.post(batch(an_input("a"))).json()["results"][0]
    emulator.control.fault_next("503", count=3)
    emulator.control.configure(latency_ms=1)
    emulator.control.reset()

    assert emulator.control.store() == {}
    assert emulator.control.history() == {}
    assert emulator.control.requests() == []
    assert emulator.control.stats()["requests"] == 0
    assert emulator.control.pending_faults() == []
    assert emulator.control.config()["latency_ms"] == 1  # config survives a plain reset
    again = upserter.post(batch(an_input("a"))).json()["results"][0]
    assert again["new"] is True and again["id"] == first["id"]


def test_reset_with_config_restores_the_start_config(emulator: RunningEmulator) -> None:
    emulator.control.configure(tokens=["other"], latency_ms=5)
    emulator.control.reset(config=True)

    assert emulator.control.config()["tokens"] == ["emulator-token"]
    assert emulator.control.config()["latency_ms"] == 0


def test_queued_faults_can_be_listed_and_cleared(emulator: RunningEmulator) -> None:
    pending = emulator.control.fault_next("timeout", count=2, when="after")

    assert pending == [{"fault": "timeout", "when": "after"}] * 2
    emulator.control.clear_faults()
    assert emulator.control.pending_faults() == []


def test_unknown_paths_get_a_hubspot_shaped_404(emulator: RunningEmulator) -> None:
    response = httpx.get(f"{emulator.url}/crm/v3/objects/subscriptions")

    assert response.status_code == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


def test_request_log_keeps_only_the_newest_entries_when_limited(
    start_emulator: StartEmulator,
) -> None:
    emulator, upserter = start_emulator(request_log_limit=2)
    for n in range(4):
        upserter.post(batch(an_input(f"id-{n}")))

    assert [e["seq"] for e in emulator.control.requests()] == [3, 4]
    assert emulator.control.stats()["requests"] == 4


def test_bad_daily_reset_time_is_refused(emulator: RunningEmulator) -> None:
    with pytest.raises(ControlError, match="time zone"):
        emulator.control.reset_daily("2026-11-08T05:00:00")
