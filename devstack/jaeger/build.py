"""Build Jaeger's all-in-one binary (Jaeger v2, on the OpenTelemetry Collector) with Go, once.

``go install github.com/jaegertracing/jaeger/cmd/jaeger@v1.75.0`` refuses to build: the module's
``go.mod`` has a ``replace`` directive, which ``go install pkg@version`` does not allow. So the
module is fetched through the Go module proxy with ``go mod download`` (checked against the
checksum database like any module) and built inside its own directory, where it is the main
module and its ``go.mod``/``go.sum`` apply unchanged (``-mod=readonly``). ``-trimpath`` keeps
local paths out of the binary; the ldflags set the version that ``jaeger version`` prints, as
the project's Makefile does.

The binary lands in a cache outside the repository
(``~/.cache/subscription-upserter/jaeger-1.75.0/bin/jaeger`` unless ``UPSERTER_JAEGER_CACHE``
names another base directory): built into a temporary sibling directory, checked to run, then
renamed into place, so a crash never leaves half a binary. The first build takes minutes (about
9 on 2 cores with empty Go caches, 2.3 GB of RAM at its peak); later calls return at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack.proc import DevstackError, cache_base, find_executable

__all__ = ["CACHE_ENV", "JAEGER_MODULE", "JAEGER_VERSION", "binary_path", "ensure_jaeger"]

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.75.0"
"""The Go module version; the binary it builds is Jaeger v2 (the collector-based one)."""

CACHE_ENV = "UPSERTER_JAEGER_CACHE"
"""Environment variable naming the cache base (default ``~/.cache/subscription-upserter``)."""

_BUILD_TIMEOUT_S = 2400.0
_DOWNLOAD_TIMEOUT_S = 900.0
_NEEDED_FOR = "build Jaeger (Go 1.24 or later)"


def binary_path() -> Path:
    """Where the built binary lives (whether or not it was built yet)."""
    version = JAEGER_VERSION.removeprefix("v")
    return cache_base(CACHE_ENV) / f"jaeger-{version}" / "bin" / "jaeger"


def _is_built(binary: Path) -> bool:
    return binary.is_file() and os.access(binary, os.X_OK)


def _go(args: list[str], *, cwd: Path | None, timeout_s: float, what: str) -> str:
    go = find_executable("go", needed_for=_NEEDED_FOR, home_env="GOROOT")
    try:
        proc = subprocess.run(
            [go, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DevstackError(f"{what} did not finish within {timeout_s:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise DevstackError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _module_dir() -> Path:
    """Download the module (cached by Go) and return its source directory."""
    what = f"go mod download {JAEGER_MODULE}@{JAEGER_VERSION}"
    out = _go(
        ["mod", "download", "-json", f"{JAEGER_MODULE}@{JAEGER_VERSION}"],
        cwd=None,
        timeout_s=_DOWNLOAD_TIMEOUT_S,
        what=what,
    )
    try:
        return Path(json.loads(out)["Dir"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DevstackError(f"{what} printed no module directory: {out[:500]}") from exc


def _build(source: Path, output: Path) -> None:
    version_flag = f"-X {JAEGER_MODULE}/internal/version.latestVersion={JAEGER_VERSION}"
    args = ["build", "-mod=readonly", "-trimpath", "-ldflags", version_flag, "-o", str(output)]
    _go(
        [*args, "./cmd/jaeger"],
        cwd=source,
        timeout_s=_BUILD_TIMEOUT_S,
        what=f"go build ./cmd/jaeger ({JAEGER_VERSION})",
    )
    check = subprocess.run(
        [str(output), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if check.returncode != 0 or JAEGER_VERSION not in check.stdout + check.stderr:
        raise DevstackError(f"the built jaeger does not report {JAEGER_VERSION}: {check.stderr}")


def ensure_jaeger() -> Path:
    """Make sure the binary is built; return its path.

    Safe from several processes at the same time: they serialise on a lock file beside the
    cache, and whoever waited finds the binary built.
    """
    binary = binary_path()
    if _is_built(binary):
        return binary
    root = binary.parent.parent
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_built(binary):
            return binary
        staging = Path(tempfile.mkdtemp(prefix=".bin-", dir=root))
        try:
            _build(_module_dir(), staging / binary.name)
            if binary.parent.exists():  # a directory without a usable binary
                shutil.rmtree(binary.parent)
            staging.rename(binary.parent)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return binary
