"""The emulator stays a dev tool (service/ never imports it) and is never the bottleneck."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import orjson

from devstack.emulator import EmulatorConfig
from devstack.emulator.state import EmulatorState
from devstack.emulator.upsert import process_upsert
from tests.emulator.support import an_input, batch

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_in_service_imports_the_emulator() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "service").rglob("*.py"))
        for name in _imported_modules(path)
        if name == "devstack" or name.startswith(("devstack.emulator", "devstack"))
    ]

    assert offenders == []


def test_emulator_imports_nothing_from_service() -> None:
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted((ROOT / "devstack" / "emulator").glob("*.py"))
        for name in _imported_modules(path)
        if name == "service" or name.startswith("service.")
    ]

    assert offenders == []


def test_a_full_batch_is_processed_in_well_under_a_benchmark_budget() -> None:
    # Benchmarks push ~300 requests/s of 100 inputs: 3.3 ms per request is the whole budget.
    state = EmulatorState(EmulatorConfig(rate_limit_max=None))
    subscriptions = state.catalog.types["subscriptions"]
    bodies = [
        orjson.dumps(batch(*(an_input(f"id-{n % 20}-{i}", hs_status="active") for i in range(100))))
        for n in range(200)
    ]
    started = time.perf_counter()
    for seq, raw in enumerate(bodies):
        outcome = process_upsert(state, subscriptions, raw, seq, "2026-11-07T00:00:00.000Z")
        orjson.dumps(outcome.body)
    per_request = (time.perf_counter() - started) / len(bodies)

    assert outcome.status == 200
    assert per_request < 0.010, f"{per_request * 1000:.2f} ms per 100-input request"
