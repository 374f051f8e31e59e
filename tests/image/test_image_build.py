"""The image as built by scripts/image/build on the stand-in base: its OCI labels, who and
what it runs by default, and its SBOM against the lock."""

from __future__ import annotations

import subprocess
import tomllib
from datetime import UTC, datetime, timedelta

import pytest

from tests.image.buildah import REPO, BuiltImage
from tests.image.sbom import load_sbom, lock_mismatches, locked_versions, sbom_versions

pytestmark = pytest.mark.image

SOURCE = "https://github.com/example/subscription-upserter"
LABEL = "org.opencontainers.image."


def _head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_image_carries_the_oci_labels_of_what_it_was_built_from(built_image: BuiltImage) -> None:
    labels = built_image.labels
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert labels[LABEL + "source"] == SOURCE
    assert labels[LABEL + "version"] == version
    assert labels[LABEL + "revision"] in {_head(), _head() + "-dirty"}
    created = datetime.fromisoformat(labels[LABEL + "created"])
    assert created.tzinfo is not None
    assert timedelta(0) <= datetime.now(UTC) - created < timedelta(days=1)
    assert labels[LABEL + "title"] == "subscription-upserter"


def test_image_runs_the_service_by_default_as_the_fixed_non_root_user(
    built_image: BuiltImage,
) -> None:
    assert built_image.config["User"] == "10001:10001"
    assert built_image.command == ["python", "-m", "service", "run"]
    assert "8080/tcp" in built_image.config["ExposedPorts"]


def test_sbom_lists_every_locked_runtime_dependency_at_its_locked_version(
    built_image: BuiltImage,
) -> None:
    document = load_sbom(built_image.sbom)
    assert str(document["specVersion"]).startswith("1.")
    locked = locked_versions((REPO / "requirements.lock").read_text())
    assert len(locked) >= 10
    assert lock_mismatches(locked, sbom_versions(document)) == {}


def test_build_reports_the_image_size(built_image: BuiltImage) -> None:
    size, unit = built_image.report["SIZE"].split()
    assert float(size) > 0 and unit in {"kB", "MB", "GB"}
