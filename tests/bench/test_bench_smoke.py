"""Smoke test of `python -m bench --smoke`: every scenario runs end to end, scaled down, and
writes what it promises.

A test of behaviour, not of timings: how fast this machine is decides the figures, so no
target is asserted; the exit code, the files, their keys, and that every figure was measured
are checked. The figures to quote come from the full or quick modes, run by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIO_FILES = (
    "api_bound", "shared_budget", "overhead", "latency", "associations", "skip_unchanged",
    "baseline",
)  # fmt: skip
COMMON_KEYS = {"scenario", "mode", "machine", "config", "targets", "figures", "measured", "passed"}
MEASURED_KEYS = {
    "api_bound": {"service", "baseline", "ratio"},
    "shared_budget": {"service"},
    "overhead": {"service", "baseline", "ratio"},
    "latency": {"p50_ms", "p99_ms", "matched", "results"},
    "associations": {"service", "requests_per_record", "association_requests_per_upsert_request"},
    "baseline": {"api_bound", "overhead"},
    "skip_unchanged": {"off", "on"},
}


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_smoke_mode_runs_every_scenario_and_writes_json(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bench", "--smoke", "--build", "source"]
    command += ["--bootstrap", kafka_bootstrap]
    completed = subprocess.run(
        [*command, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert "| scenario" in completed.stdout
    assert "machine: " in completed.stdout
    assert "build source;" in completed.stdout

    for name in SCENARIO_FILES:
        document = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert document.keys() >= COMMON_KEYS, name
        assert document["scenario"] == name
        assert document["mode"] == "smoke"
        assert document["measured"].keys() >= MEASURED_KEYS[name], name
        assert document["machine"].keys() >= {"cpu_count", "cpu_model", "python"}
        assert document["machine"]["build"] == "source"  # each service process checked it
        for target in document["targets"]:
            assert target.keys() >= {"figure", "measured", "target", "pass"}
            assert isinstance(target["pass"], bool)
            assert target["measured"] is not None, (name, target["figure"])

    api = json.loads((out / "api_bound.json").read_text(encoding="utf-8"))["measured"]
    service = api["service"]
    assert service["results"] == service["events"]  # every event got its result
    assert {"mean_inputs_per_request", "status_429", "status_429_after_first_window"} <= (
        service.keys()
    )
    assert service["sustained"]["records_per_s"] is not None
    overhead = json.loads((out / "overhead.json").read_text(encoding="utf-8"))["measured"]
    assert {"events_per_s", "cpu_s_per_100k_events", "peak_rss_mib", "emulator_cpu_s"} <= (
        overhead["service"].keys()
    )
    skip = json.loads((out / "skip_unchanged.json").read_text(encoding="utf-8"))["measured"]
    for side in ("off", "on"):
        assert skip[side]["results"] == skip[side]["events"], side
        assert skip[side]["hubspot_holds_last_snapshots"], side
    assert skip["on"]["inputs_skipped"] > 0 and skip["off"]["inputs_skipped"] == 0
    assert (out / "throughput.png").stat().st_size > 0
