"""What the figures were measured on: CPU count and model, memory, Python, versions."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from bench.procstat import load_average

REPO = Path(__file__).resolve().parents[1]


def _cpuinfo_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _git_commit() -> str | None:
    """The commit, marked `+dirty` when service/ has uncommitted changes (they were measured)."""
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    dirty = _git("status", "--porcelain", "--", "service")
    return f"{commit}+dirty" if dirty else commit


def describe() -> dict[str, object]:
    """The machine and software, as printed in the header and stored in every JSON file."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpuinfo_model(),
        "memory_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "load_average_1m_at_start": load_average(),
    }


def header_lines(info: dict[str, object], mode: str) -> list[str]:
    return [
        f"machine: {info['cpu_count']} CPUs ({info['cpu_model']}), {info['memory_gib']} GiB, "
        f"{info['platform']}",
        f"python {info['python']}; commit {info['git_commit']}; build {info.get('build')}; "
        f"mode {mode}; "
        f"load average at start {info['load_average_1m_at_start']}",
    ]
