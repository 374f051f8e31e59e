"""Fixtures: an emulator per test (in a thread), started from any config, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.emulator import Clock, EmulatorConfig, RunningEmulator, start_in_thread
from tests.emulator.support import Upserter

StartEmulator = Callable[..., tuple[RunningEmulator, Upserter]]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """`start_emulator(clock=None, **config_fields)` -> (running emulator, upserter)."""
    started: list[tuple[RunningEmulator, Upserter]] = []

    def start(clock: Clock | None = None, **fields: Any) -> tuple[RunningEmulator, Upserter]:
        emulator = start_in_thread(EmulatorConfig(**fields), clock=clock)
        pair = (emulator, Upserter(emulator.url))
        started.append(pair)
        return pair

    yield start
    for emulator, upserter in started:
        upserter.close()
        emulator.stop()


@pytest.fixture
def default_pair(start_emulator: StartEmulator) -> tuple[RunningEmulator, Upserter]:
    return start_emulator()


@pytest.fixture
def emulator(default_pair: tuple[RunningEmulator, Upserter]) -> RunningEmulator:
    """An emulator with the default config."""
    return default_pair[0]


@pytest.fixture
def upserter(default_pair: tuple[RunningEmulator, Upserter]) -> Upserter:
    """An upserter on the same default emulator as `emulator`."""
    return default_pair[1]
