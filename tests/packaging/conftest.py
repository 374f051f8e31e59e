"""Fixtures of the packaging tests: the helm binary and the chart location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.packaging.helm_tool import HelmUnavailableError, ensure_helm

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "subscription-upserter"


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary; a failure under CI=true, a skip elsewhere, when unavailable."""
    try:
        return ensure_helm()
    except HelmUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"helm is required under CI: {exc}")
        pytest.skip(f"helm unavailable: {exc}")


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    """The chart under test (override with PACKAGING_CHART_DIR, e.g. a scratch copy)."""
    return Path(os.environ.get("PACKAGING_CHART_DIR", CHART_DIR)).resolve()
