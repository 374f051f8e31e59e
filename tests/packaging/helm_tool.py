"""Finds the `helm` and `helm-docs` binaries, installing them with `go install` when missing.

Used by the chart tests. Under CI=true a tool that cannot be found or installed is a test
failure; elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION = "v3.19.0"
# Generates the chart's README.md from the values' comments (.ci/run installs the same).
HELM_DOCS_MODULE = "github.com/norwoodj/helm-docs/cmd/helm-docs"
HELM_DOCS_VERSION = "v1.14.2"
INSTALL_TIMEOUT_S = 1500


class HelmUnavailableError(RuntimeError):
    """A Go tool (helm, helm-docs) is neither on PATH nor installable here; the message
    says why."""


def _go_bin_dirs() -> list[Path]:
    dirs = []
    if gobin := os.environ.get("GOBIN"):
        dirs.append(Path(gobin))
    if gopath := os.environ.get("GOPATH"):
        dirs.extend(Path(part) / "bin" for part in gopath.split(os.pathsep) if part)
    dirs.append(Path.home() / "go" / "bin")
    return dirs


def find_tool(name: str) -> Path | None:
    """`name` on PATH, else in a Go bin directory (GOBIN, GOPATH/bin, ~/go/bin)."""
    if found := shutil.which(name):
        return Path(found)
    for directory in _go_bin_dirs():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_helm() -> Path | None:
    return find_tool("helm")


def install_tool(name: str, module: str, version: str) -> Path:
    """`go install module@version` into the Go bin directory; slow the first time."""
    default_go = Path("/usr/local/go/bin/go")
    go = shutil.which("go") or (str(default_go) if default_go.exists() else None)
    if go is None:
        raise HelmUnavailableError(f"{name} is not installed and Go is not available to build it")
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-mod=mod")}
    try:
        result = subprocess.run(
            [go, "install", f"{module}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HelmUnavailableError(f"go install of {name} timed out after {exc.timeout}s") from None
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-5:]
        raise HelmUnavailableError(f"go install of {name} failed: " + " | ".join(tail))
    found = find_tool(name)
    if found is None:
        raise HelmUnavailableError(f"go install of {name} succeeded but no binary was found")
    return found


def install_helm() -> Path:
    return install_tool("helm", HELM_MODULE, HELM_VERSION)


def ensure_helm() -> Path:
    """The helm binary, installing it when missing; HelmUnavailableError otherwise."""
    return find_helm() or install_helm()


def ensure_helm_docs() -> Path:
    """The helm-docs binary, installing it when missing; HelmUnavailableError otherwise."""
    return find_tool("helm-docs") or install_tool("helm-docs", HELM_DOCS_MODULE, HELM_DOCS_VERSION)


def required_tool(ensure: Callable[[], Path], name: str) -> Path:
    """The tool `ensure` finds or installs; a failure under CI=true, a skip elsewhere."""
    try:
        return ensure()
    except HelmUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is required under CI: {exc}")
        pytest.skip(f"{name} unavailable: {exc}")
