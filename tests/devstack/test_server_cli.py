"""``python -m devstack.registry`` and ``python -m devstack.jaeger``: fetch/build print where
the cached server is, run serves until SIGTERM/SIGINT and stops it, errors are one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.registry import ensure_registry_dist
from tests.devstack.procfs import child_pids
from tests.jaeger_support import require_jaeger_binary

REPO = Path(__file__).resolve().parents[2]


def _cli(module: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _bare_env(tmp_path: Path) -> dict[str, str]:
    """No tools on PATH, and empty caches (so nothing is found ready-made)."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "GOROOT")}
    env["PATH"] = str(tmp_path / "empty-bin")
    env["UPSERTER_REGISTRY_CACHE"] = str(tmp_path / "cache")
    env["UPSERTER_JAEGER_CACHE"] = str(tmp_path / "cache")
    return env


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        (
            "devstack.registry",
            ["fetch"],
            "python -m devstack.registry: error: 'mvn' not found on PATH; install it to "
            "fetch Apicurio Registry (the local Schema Registry)",
        ),
        (
            "devstack.jaeger",
            ["build"],
            "python -m devstack.jaeger: error: 'go' not found on PATH; install it to "
            "build Jaeger (Go 1.24 or later)",
        ),
    ],
)
def test_a_missing_tool_is_one_error_line(
    tmp_path: Path, module: str, args: list[str], message: str
) -> None:
    result = _cli(module, *args, env=_bare_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message]


def test_registry_run_without_java_is_one_error_line(tmp_path: Path) -> None:
    env = _bare_env(tmp_path)
    del env["UPSERTER_REGISTRY_CACHE"]  # the real cache: java is looked for before the fetch
    result = _cli("devstack.registry", "run", "--dir", str(tmp_path / "r"), env=env)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'java' not found on PATH; install it to run Apicurio Registry" in result.stderr


@pytest.mark.schema_registry
def test_registry_fetch_prints_the_cached_distribution() -> None:
    result = _cli("devstack.registry", "fetch", env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ensure_registry_dist()


def _serve(module: str, tmp_path: Path, prefix: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "run", "--dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server is ready (or the CLI failed)
    assert line.startswith(prefix), proc.stderr and proc.stderr.read()
    return proc, line


def _stops_on(proc: subprocess.Popen[str], signum: signal.Signals, name: str) -> None:
    children = child_pids(proc.pid)
    assert children
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 0
    assert proc.stdout is not None and proc.stdout.read().strip() == f"{name} stopped"
    time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


@pytest.mark.schema_registry
def test_registry_run_serves_until_sigterm(tmp_path: Path) -> None:
    proc, line = _serve("devstack.registry", tmp_path, "registry listening on http://127.0.0.1:")
    try:
        url = line.split()[-1]
        assert url.endswith("/apis/ccompat/v7")
        assert httpx.get(url + "/subjects", timeout=10).json() == []
        _stops_on(proc, signal.SIGTERM, "registry")
        assert "stopped in" in (tmp_path / "registry.log").read_text()  # Quarkus shut down
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.jaeger
def test_jaeger_run_serves_until_sigint(tmp_path: Path) -> None:
    require_jaeger_binary()
    proc, line = _serve(
        "devstack.jaeger", tmp_path, "jaeger listening: otlp grpc http://127.0.0.1:"
    )
    try:
        query_url = line.split()[-1]
        assert httpx.get(query_url + "/api/services", timeout=10).status_code == 200
        _stops_on(proc, signal.SIGINT, "jaeger")
        assert "Shutdown complete." in (tmp_path / "jaeger.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
