from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.integration.support import TOKEN


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start_in_thread(
        EmulatorConfig(tokens=frozenset({TOKEN}), latency_ms=20, jitter_ms=10, seed=7)
    )
    try:
        yield running
    finally:
        running.stop()
