"""The built image runs the service's job for real: through its own entrypoint, as UID/GID
10001, against the local broker and the HubSpot emulator on the host network; it gets ready,
drains on SIGTERM with exit 0 and loses nothing. `check-config` and `redrive --help` work in
it too.

chroot isolation makes the containerised `python` an ordinary host process: the test sends
SIGTERM to it, as the kubelet does to PID 1 (`buildah run` would kill it instead of passing
the signal on), and reads its exit code from `buildah run`, which returns it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.image.buildah import BuiltImage, Container
from tests.image.conftest import TIMINGS
from tests.image.processes import HostProcess, find_descendant, runs
from tests.integration.support import (
    ID_PROPERTY,
    TOKEN,
    Topics,
    committed,
    event_bytes,
    free_port,
    new_topics,
    probe,
    produce,
    result_counts,
    wait_until,
)

pytestmark = pytest.mark.image

SERVICE_USER = (10001, 10001)
EVENTS = 6000
PARTITIONS = 3


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # Some latency, so batches are still in flight when SIGTERM arrives.
    running = start_in_thread(EmulatorConfig(tokens=frozenset({TOKEN}), latency_ms=40, seed=5))
    try:
        yield running
    finally:
        running.stop()


def _settings(bootstrap: str, topics: Topics, hubspot_url: str) -> dict[str, str]:
    """The service's settings only: the image's own environment (PATH, venv) stays."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_INPUT_TOPIC": topics.input,
        "KAFKA_OUTPUT_TOPIC": topics.output,
        "KAFKA_DLQ_TOPIC": topics.dlq,
        "KAFKA_GROUP_ID": topics.group,
        "HUBSPOT_BASE_URL": hubspot_url,
        "HUBSPOT_ACCESS_TOKEN": TOKEN,
        "HUBSPOT_ID_PROPERTY": ID_PROPERTY,
        "BATCH_MAX_WAIT_MS": "200",
        "COMMIT_INTERVAL_MS": "200",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
    }


class ImageRun:
    """The image's default command (entrypoint + cmd) running in `container`."""

    def __init__(
        self, container: Container, image: BuiltImage, settings: dict[str, str], log: Path
    ) -> None:
        self.url = f"http://127.0.0.1:{settings['HTTP_PORT']}"
        self.log = log
        self.buildah_run = container.start(image.command, settings, log)
        self.python = self._find_python(image.command)

    def _find_python(self, command: list[str]) -> HostProcess:
        found: list[HostProcess] = []

        def started() -> bool:
            self._fail_if_exited()
            process = find_descendant(self.buildah_run.pid, runs(command[1:]))
            found.extend([process] if process else [])
            return bool(found)

        wait_until(started, 60, "the containerised python process")
        return found[0]

    def _fail_if_exited(self) -> None:
        if self.buildah_run.poll() is not None:
            raise AssertionError(f"the container exited early:\n{self.log.read_text()[-3000:]}")

    def wait_ready(self) -> None:
        wait_until(lambda: probe(self.url + "/readyz") == (200, "ok\n"), 60, "/readyz 200")
        ready = 'subscription_upserter_ready{reason="ok"} 1.0'
        wait_until(lambda: self.samples("subscription_upserter_ready") == [ready], 30, ready)

    def samples(self, name: str) -> list[str]:
        """The exposition lines of metric `name` (with labels and value)."""
        status, text = probe(self.url + "/metrics")
        assert status == 200, "the metrics endpoint does not answer"
        return [line for line in text.splitlines() if line.startswith((name + " ", name + "{"))]

    def results(self) -> float:
        lines = self.samples("subscription_upserter_results_total")
        return sum(float(line.split()[-1]) for line in lines)

    def terminate(self, timeout_s: float = 90) -> tuple[int, float]:
        """SIGTERM to the containerised python; its exit code and how long it took to exit."""
        started = time.monotonic()
        os.kill(self.python.pid, signal.SIGTERM)
        try:
            code = self.buildah_run.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.buildah_run.kill()
            raise AssertionError(f"no exit {timeout_s:.0f}s after SIGTERM") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.buildah_run.poll() is None:
            os.kill(self.python.pid, signal.SIGKILL)
            self.buildah_run.wait(timeout=30)


def _covered_below_commits(bootstrap: str, topics: Topics) -> None:
    """Every input offset below the group's committed position has a result."""
    results = result_counts(bootstrap, topics.output)
    positions = committed(bootstrap, topics.group, topics.input, PARTITIONS)
    assert sum(max(offset, 0) for offset in positions.values()) > 0, "nothing was committed"
    for partition, position in positions.items():
        missing = [o for o in range(max(position, 0)) if (partition, o) not in results]
        assert missing == [], f"partition {partition}: committed past offsets without results"


def test_check_config_reads_and_hides_the_settings_inside_the_image(
    container: Container, built_image: BuiltImage
) -> None:
    settings = _settings("127.0.0.1:9", Topics("in", "out", "dlq", "group"), "http://127.0.0.1:9")
    result = container.run([*built_image.command[:-1], "check-config"], settings)
    assert result.returncode == 0, result.stderr
    assert "KAFKA_INPUT_TOPIC=in" in result.stdout
    assert "HUBSPOT_ACCESS_TOKEN=***" in result.stdout and TOKEN not in result.stdout
    refused = container.run(
        [*built_image.command[:-1], "check-config"], {**settings, "BATCH_MAX_SIZE": "500"}
    )
    assert refused.returncode == 2 and "BATCH_MAX_SIZE" in refused.stderr.upper(), refused.stderr


def test_redrive_help_runs_inside_the_image(container: Container, built_image: BuiltImage) -> None:
    result = container.run([*built_image.command[:-1], "redrive", "--help"], {})
    assert result.returncode == 0, result.stderr
    assert "--dry-run" in result.stdout and "--max-redrives" in result.stdout


def test_the_image_runs_the_job_as_10001_gets_ready_and_drains_on_sigterm(
    container: Container,
    built_image: BuiltImage,
    kafka_bootstrap: str,
    emulator: RunningEmulator,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    topics = new_topics(kafka_bootstrap, PARTITIONS)
    settings = _settings(kafka_bootstrap, topics, emulator.url)
    events: list[tuple[bytes | None, bytes | None]] = [
        event_bytes(f"sub-{n % 2500:05d}", hs_name=f"Plan {n}", hs_status="active")
        for n in range(EVENTS)
    ]
    first = ImageRun(container, built_image, settings, tmp_path / "first.log")
    try:
        assert first.python.uids == SERVICE_USER and first.python.gids == SERVICE_USER
        first.wait_ready()
        produce(kafka_bootstrap, topics.input, events)
        wait_until(lambda: first.results() >= 500, 60, "the first results")
        code, drain_s = first.terminate()
    finally:
        first.kill()
    log = first.log.read_text()
    assert code == 0, log[-3000:]
    assert "drained: every" in log and "drain timeout reached" not in log, log[-3000:]
    _covered_below_commits(kafka_bootstrap, topics)

    second = ImageRun(container, built_image, settings, tmp_path / "second.log")
    try:
        second.wait_ready()  # its signal handlers are in place: a SIGTERM now is a drain
        wait_until(lambda: len(result_counts(kafka_bootstrap, topics.output)) >= EVENTS, 120,
                   "a result for every event")  # fmt: skip
        code, _ = second.terminate()
    finally:
        second.kill()
    assert code == 0, second.log.read_text()[-3000:]
    _covered_below_commits(kafka_bootstrap, topics)
    TIMINGS["drain after SIGTERM (first run)"] = drain_s
    TIMINGS["service job checks (two runs of the image)"] = time.monotonic() - started
