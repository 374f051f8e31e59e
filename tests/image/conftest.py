"""Fixtures of the image tests: the image, built once per session with buildah on the stand-in
base (scripts/image/build --stand-in), and a report of its size and the time each step took.

Select them with `-m image`. Without buildah they are skipped with the reason, except under
CI=true, where they fail: CI installs buildah (.ci/run). IMAGE_UNDER_TEST=DIR checks an image
built earlier instead (DIR holds the image.env the build script wrote).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.buildah import BuiltImage, Container, build_image, buildah_unavailable

# Seconds each step took in this session, printed at the end of the run.
TIMINGS: dict[str, float] = {}
FACTS: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "image: builds the service image with buildah and runs checks inside it"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS and not FACTS:
        return
    terminalreporter.section("service image")
    for fact, value in FACTS.items():
        terminalreporter.write_line(f"{fact}: {value}")
    for step, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{step}: {seconds:.0f} s")


def _require_buildah() -> None:
    reason = buildah_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the image tests must run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    _require_buildah()
    prebuilt = os.environ.get("IMAGE_UNDER_TEST")
    if prebuilt:
        image = BuiltImage.load(Path(prebuilt))
    else:
        started = time.monotonic()
        image = build_image(tmp_path_factory.mktemp("image"))
        TIMINGS["stand-in bases (when missing), image build and SBOM"] = time.monotonic() - started
        TIMINGS["of which the Dockerfile build"] = float(image.report["BUILD_SECONDS"])
    FACTS["image"] = f"{image.name} ({image.report['IMAGE_ID'][:19]})"
    FACTS["size"] = image.report["SIZE"]
    return image


@pytest.fixture(scope="module")
def container(built_image: BuiltImage) -> Iterator[Container]:
    """One working container of the image for a module's checks, removed afterwards."""
    made = Container(built_image.name)
    try:
        yield made
    finally:
        made.remove()
