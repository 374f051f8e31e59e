"""Fixtures of the packaging tests: the helm and helm-docs binaries, the chart location and
the chart rendered with each of its ci/*-values.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.packaging.helm_tool import ensure_helm, ensure_helm_docs, required_tool
from tests.packaging.rendering import EVERYTHING, HPA, REQUIRED, Manifest, render

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "subscription-upserter"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary; a failure under CI=true, a skip elsewhere, when unavailable."""
    return required_tool(ensure_helm, "helm")


@pytest.fixture(scope="session")
def helm_docs() -> Path:
    """The helm-docs binary (the chart README's generator), like `helm`."""
    return required_tool(ensure_helm_docs, "helm-docs")


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    """The chart under test (override with PACKAGING_CHART_DIR, e.g. a scratch copy)."""
    return Path(os.environ.get("PACKAGING_CHART_DIR", CHART_DIR)).resolve()


@pytest.fixture(scope="module")
def defaults(
    helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Manifest]:
    return render(helm, chart_dir, REQUIRED, tmp_path_factory.mktemp("defaults"))


@pytest.fixture(scope="module")
def everything(
    helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Manifest]:
    return render(helm, chart_dir, EVERYTHING, tmp_path_factory.mktemp("everything"))


@pytest.fixture(scope="module")
def everything_hpa(
    helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Manifest]:
    return render(helm, chart_dir, HPA, tmp_path_factory.mktemp("hpa"))
