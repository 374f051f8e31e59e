"""The processes a scenario starts: HubSpot emulators, service instances, baseline loops.

Each wrapper knows its pid (for CPU and memory from /proc), writes its output to a log file
in the run's work directory, and stops what it started (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from bench.build import Code
from bench.kafka_io import RunTopics
from bench.machine import REPO
from bench.modes import Limit
from bench.procstat import cpu_seconds, peak_rss_mib
from devstack.emulator import ControlClient
from devstack.kafka import free_ports

TOKEN = "bench-private-app-token"
ID_PROPERTY = "external_subscription_id"
_STOP_TIMEOUT_S = 60.0
_BUILD_INFO = "subscription_upserter_build_info{"


def _env() -> dict[str, str]:
    # Nothing of the caller's own Kafka, HubSpot or tracing settings: a run sets what it needs.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "HUBSPOT_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class Process:
    """A child process with its output in `log_path`."""

    def __init__(
        self, command: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path = REPO
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=self._log, stderr=self._log
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def peak_rss_mib(self) -> float | None:
        return peak_rss_mib(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Emulator(Process):
    """`python -m devstack.emulator` on a free loopback port."""

    def __init__(
        self, limit: Limit | None, latency_ms: float, jitter_ms: float, log_path: Path
    ) -> None:
        port = free_ports(1)[0]
        args = [
            sys.executable, "-m", "devstack.emulator",
            "--host", "127.0.0.1", "--port", str(port),
            "--token", TOKEN,
            "--rate-limit", limit.flag if limit else "unlimited",
            "--latency-ms", str(latency_ms),
            "--jitter-ms", str(jitter_ms),
            "--no-history",
            "--seed", "7",
            "--log-level", "WARNING",
        ]  # fmt: skip
        super().__init__(args, _env(), log_path)
        self.limit = limit
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.url = f"http://127.0.0.1:{port}"
        self.control = ControlClient(self.url)
        _wait_until(self._healthy, 30, f"the emulator on {self.url}", self)

    def _healthy(self) -> bool:
        try:
            return self.control.health()
        except httpx.HTTPError:
            return False

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> int:
        self.control.close()
        return super().stop(timeout_s)


def service_env(
    bootstrap: str, topics: RunTopics, emulator: Emulator, batch_max_wait_ms: int
) -> dict[str, str]:
    limit = emulator.limit or Limit()
    env = _env()
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_INPUT_TOPIC=topics.input,
        KAFKA_OUTPUT_TOPIC=topics.output,
        KAFKA_DLQ_TOPIC=topics.dlq,
        KAFKA_GROUP_ID=topics.group,
        HUBSPOT_BASE_URL=emulator.url,
        HUBSPOT_ACCESS_TOKEN=TOKEN,
        HUBSPOT_ID_PROPERTY=ID_PROPERTY,
        HUBSPOT_RATE_LIMIT_REQUESTS=str(limit.requests),
        HUBSPOT_RATE_LIMIT_INTERVAL_MS=str(limit.interval_ms),
        BATCH_MAX_WAIT_MS=str(batch_max_wait_ms),
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_ports(1)[0]),
        LOG_LEVEL="INFO",
    )
    return env


class Service(Process):
    """`python -m service run` with the settings of one run, from `code.root` (the sources,
    or a compiled copy of them: bench.build)."""

    def __init__(self, env: dict[str, str], log_path: Path, code: Code) -> None:
        env = {**env, "PYTHONPATH": os.pathsep.join((str(code.root), env["PYTHONPATH"]))}
        super().__init__([sys.executable, "-m", "service", "run"], env, log_path, code.root)
        self.base = f"http://127.0.0.1:{env['HTTP_PORT']}"
        self.code = code

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 60) -> float:
        """Wait for /readyz (joined the group, partitions assigned); returns time.time().
        Raises if the process runs another build than the one asked for."""
        _wait_until(self.is_ready, timeout_s, f"the service ({self.log_path}) to be ready", self)
        ready_at = time.time()
        compiled = self.runs_compiled()
        if compiled != (self.code.build == "compiled"):
            raise RuntimeError(f"asked for the {self.code.build} build; compiled={compiled}")
        return ready_at

    def runs_compiled(self) -> bool:
        """What the service's build_info says of its hot path."""
        text = httpx.get(f"{self.base}/metrics", timeout=5).text
        info = next(line for line in text.splitlines() if line.startswith(_BUILD_INFO))
        return 'compiled="true"' in info

    def metric(self, name: str) -> float:
        """Sum of every sample of a metric; 0 when absent or unreachable."""
        try:
            text = httpx.get(f"{self.base}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total


class Baseline(Process):
    """`python -m bench.baseline`: the straightforward loop, for comparison."""

    def __init__(
        self, bootstrap: str, topics: RunTopics, emulator: Emulator, work_dir: Path, label: str
    ) -> None:
        self.ready_file = work_dir / f"{label}.ready"
        args = [
            sys.executable, "-m", "bench.baseline",
            "--bootstrap", bootstrap,
            "--input-topic", topics.input,
            "--output-topic", topics.output,
            "--group", topics.group,
            "--hubspot-url", emulator.url,
            "--token", TOKEN,
            "--id-property", ID_PROPERTY,
            "--ready-file", str(self.ready_file),
        ]  # fmt: skip
        super().__init__(args, _env(), work_dir / f"{label}.log")

    def wait_ready(self, timeout_s: float = 60) -> float:
        _wait_until(self.ready_file.exists, timeout_s, "the baseline to be assigned", self)
        return time.time()


def _wait_until(
    predicate: Callable[[], bool], timeout_s: float, what: str, process: Process
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if not process.alive():
            raise RuntimeError(
                f"{what}: process exited with {process.process.returncode}; see {process.log_path}"
            )
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def stop_all(processes: Sequence[Process]) -> list[int]:
    """Stop several processes at once (in parallel threads); returns their exit codes."""
    codes: list[int] = [0] * len(processes)

    def stop(index: int) -> None:
        codes[index] = processes[index].stop()

    threads = [threading.Thread(target=stop, args=(i,)) for i in range(len(processes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes
