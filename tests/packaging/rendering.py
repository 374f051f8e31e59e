"""Rendering the chart for the packaging tests: `helm template` with values, and the chart's
ci/*-values.yaml (the files `helm lint` checks too)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_VERSION = "1.33.0"
RELEASE = "upserter"
NAMESPACE = "streaming"
FULLNAME = "upserter-subscription-upserter"
CI_VALUES = Path(__file__).resolve().parents[2] / "helm" / "subscription-upserter" / "ci"

Manifest = dict[str, Any]


def ci_values(name: str) -> dict[str, Any]:
    """The chart's ci/<name>-values.yaml."""
    values: dict[str, Any] = yaml.safe_load((CI_VALUES / f"{name}-values.yaml").read_text())
    return values


REQUIRED = ci_values("default")  # the required values only
EVERYTHING = ci_values("everything")  # every optional object, fake credentials of every kind
HPA = ci_values("hpa")  # the HPA instead of KEDA


def merge(base: dict[str, Any], *overlays: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for overlay in overlays:
        for key, value in overlay.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def run_template(
    helm: Path, chart: Path, values: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    values_file = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return subprocess.run(
        [str(helm), "template", RELEASE, str(chart), "--namespace", NAMESPACE,
         "--values", str(values_file), "--kube-version", KUBERNETES_VERSION],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def render(helm: Path, chart: Path, values: dict[str, Any], tmp_path: Path) -> list[Manifest]:
    result = run_template(helm, chart, values, tmp_path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
