"""`python -m devstack.emulator`: the listening line, the port file, signals, bad flags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devstack.emulator import RunningEmulator, start_in_subprocess
from tests.emulator.support import Upserter, an_input, batch

ROOT = Path(__file__).resolve().parents[2]
LINE_PREFIX = "emulator listening on http://127.0.0.1:"


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "devstack.emulator", "--host", "127.0.0.1", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_prints_one_listening_line_and_exits_0_on_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port_file = tmp_path / "port"
    process = _spawn("--port", "0", "--port-file", str(port_file))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(LINE_PREFIX)
        port = int(line.strip().rsplit(":", 1)[1])
        assert port > 0
        assert port_file.read_text().strip() == str(port)
        health = httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5)
        assert health.json() == {"status": "ok"}
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert stdout == ""  # nothing after the one line
    assert "serving" in stderr  # logs go to stderr


def test_bad_flags_exit_2_with_a_clear_message() -> None:
    process = _spawn("--port", "0", "--fault", "418=0.5")
    stdout, stderr = process.communicate(timeout=15)

    assert process.returncode == 2
    assert stdout == ""
    assert "418" in stderr


def test_subprocess_handle_serves_upserts_and_control_calls() -> None:
    emulator = start_in_subprocess(["--token", "cli-token", "--shuffle-results"])
    upserter = Upserter(emulator.url, token="cli-token")
    try:
        response = upserter.post(batch(an_input("a"), an_input("b")))
        assert response.status_code == 200
        assert set(emulator.control.store()) == {"a", "b"}
        assert emulator.control.config()["shuffle_results"] is True
        attached = RunningEmulator.from_url(emulator.url + "/")
        assert attached.control.stats()["requests"] == 1
        attached.stop()  # a plain handle stops nothing
        assert emulator.control.health()
    finally:
        upserter.close()
        emulator.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{emulator.url}/_emulator/health", timeout=2)
