"""The compiled hot path (scripts/build_native.py, service/entry/native.py).

Development and the test command run the sources, with no C compiler needed. The image
compiles the hot-path modules with mypyc; so does this test, into a copy of the repository's
code, and then runs the unit suite against that compiled copy, so both builds stay tested.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import service
from service.adapters.prometheus import Metrics
from service.entry import native

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_native.py"


def test_the_working_tree_runs_the_sources() -> None:
    assert native.compiled_modules() == ()
    assert native.describe() == "pure Python"
    assert not list((REPO_ROOT / "service").rglob("*.so")), "compile into a copy, not the tree"


def test_build_info_says_whether_the_hot_path_is_compiled() -> None:
    for compiled in (False, True):
        registry = CollectorRegistry()
        Metrics(registry, compiled=compiled)
        labels = [
            sample.labels
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "subscription_upserter_build_info"
        ]
        assert labels == [
            {
                "version": service.__version__,
                "python": platform.python_version(),
                "compiled": "true" if compiled else "false",
            }
        ]


def test_the_build_refuses_to_compile_into_a_working_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    result = _build(tmp_path)
    assert result.returncode == 2
    assert "is a git working tree; compile into a copy" in result.stderr
    assert not (tmp_path / "service").exists()


@pytest.fixture(scope="module")
def compiled_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the code the unit suite needs, with service/ compiled as the image does."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): the compiled build is tested where one is installed")
    root = tmp_path_factory.mktemp("compiled")
    for folder in ("tests", "devstack"):
        shutil.copytree(
            REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", root)
    result = _build(root)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return root


def test_every_hot_path_module_loads_compiled_and_the_rest_from_source(
    compiled_copy: Path,
) -> None:
    code = (
        "import json, sys; from service.entry import native; "
        "import service.entry.app, service.adapters.kafka; "
        "print(json.dumps({'state': native.describe(), "
        "'plain': [sys.modules[m].__file__ for m in "
        "('service.entry.app', 'service.adapters.kafka', 'service.loop.caller')]}))"
    )
    result = _run_in(compiled_copy, "-c", code)
    assert result.returncode == 0, result.stderr[-4000:]
    loaded = result.stdout
    assert '"state": "compiled"' in loaded, loaded
    assert ".so" not in loaded.split('"plain"')[1], "adapters and settings stay readable"


def test_the_unit_suite_passes_on_the_compiled_build(compiled_copy: Path) -> None:
    result = _run_in(compiled_copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def _build(dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), str(dest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def _run_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Python with `args`, from `root`: its compiled service/ comes before the tree's."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
