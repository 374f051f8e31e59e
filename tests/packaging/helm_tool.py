"""Finds the `helm` binary, installing it with `go install` when it is missing.

Used by the chart tests. Under CI=true a helm that cannot be found or installed is a test
failure; elsewhere the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
HELM_VERSION = "v3.19.0"
INSTALL_TIMEOUT_S = 1500


class HelmUnavailableError(RuntimeError):
    """helm is neither on PATH nor installable here; the message says why."""


def _go_bin_dirs() -> list[Path]:
    dirs = []
    if gobin := os.environ.get("GOBIN"):
        dirs.append(Path(gobin))
    if gopath := os.environ.get("GOPATH"):
        dirs.extend(Path(part) / "bin" for part in gopath.split(os.pathsep) if part)
    dirs.append(Path.home() / "go" / "bin")
    return dirs


def find_helm() -> Path | None:
    """helm on PATH, else in a Go bin directory (GOBIN, GOPATH/bin, ~/go/bin)."""
    if found := shutil.which("helm"):
        return Path(found)
    for directory in _go_bin_dirs():
        candidate = directory / "helm"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def install_helm() -> Path:
    """`go install helm@HELM_VERSION` into the Go bin directory; slow the first time."""
    default_go = Path("/usr/local/go/bin/go")
    go = shutil.which("go") or (str(default_go) if default_go.exists() else None)
    if go is None:
        raise HelmUnavailableError("helm is not installed and Go is not available to build it")
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-mod=mod")}
    try:
        result = subprocess.run(
            [go, "install", f"{HELM_MODULE}@{HELM_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HelmUnavailableError(f"go install of helm timed out after {exc.timeout}s") from None
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-5:]
        raise HelmUnavailableError("go install of helm failed: " + " | ".join(tail))
    found = find_helm()
    if found is None:
        raise HelmUnavailableError("go install of helm succeeded but no helm binary was found")
    return found


def ensure_helm() -> Path:
    """The helm binary, installing it when missing; HelmUnavailableError otherwise."""
    return find_helm() or install_helm()
