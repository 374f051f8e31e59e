"""``python -m devstack.kafka``: fetch prints the jar dir, run serves until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from devstack.kafka.libs import ensure_kafka_libs
from tests.devstack.procfs import child_pids

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.kafka", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.kafka
def test_fetch_prints_the_libs_dir() -> None:
    result = _cli("fetch")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ensure_kafka_libs()


def test_fetch_without_maven_fails_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "UPSERTER_KAFKA_CACHE": str(tmp_path / "c")}
    result = _cli("fetch", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "python -m devstack.kafka: error: 'mvn' not found on PATH; "
        "install it to run the local Kafka broker"
    ]


def test_run_without_java_fails_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)
    result = _cli("run", "--dir", str(tmp_path / "broker"), env=env)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'java' not found" in result.stderr


@pytest.mark.kafka
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_until_signalled_then_stops_the_broker(
    tmp_path: Path, signum: signal.Signals
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.kafka", "run", "--dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the broker is ready (or the CLI failed)
        assert line.startswith("kafka listening on 127.0.0.1:"), proc.stderr and proc.stderr.read()
        bootstrap = line.split()[-1]
        assert AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).brokers
        java_pids = child_pids(proc.pid)
        assert java_pids

        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read().strip() == "kafka stopped"
        time.sleep(0.2)
        assert not [pid for pid in java_pids if Path(f"/proc/{pid}").exists()]
        assert "Kafka Server started" in (tmp_path / "broker.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
