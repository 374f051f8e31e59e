"""The compiled hot path (scripts/build_native.py, service/native.py).

The tests run what the image ships: the hot-path modules compiled with mypyc. A compiled
module is used only while it was built from the source beside it; otherwise, or when
SERVICE_PURE_PYTHON asks for it, every module loads from source. The pure-Python path stays
a supported way to run, so the unit suite runs on it too.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

import service
from service import native
from service.metrics import Metrics
from service.native import MANIFEST, NATIVE_MODULES, PURE_PYTHON_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "service"
REBUILD = "run scripts/build_native.py (scripts/bootstrap does)"


def test_the_tests_run_the_compiled_hot_path() -> None:
    assert service.NATIVE.compiled == NATIVE_MODULES, f"{service.NATIVE.describe()}: {REBUILD}"
    for name in NATIVE_MODULES:
        module = sys.modules.get(name) or __import__(name, fromlist=["_"])
        assert str(module.__file__).endswith(".so"), module.__file__


def test_the_modules_around_the_hot_path_stay_plain_python() -> None:
    # native.py decides at import, before anything compiled could load; adapters and
    # configuration stay readable in tracebacks.
    assert "service.native" not in NATIVE_MODULES
    for name in ("service.native", "service.config", "service.app", "service.adapters.kafka"):
        module = __import__(name, fromlist=["_"])
        assert str(module.__file__).endswith(".py"), module.__file__


def test_build_info_says_whether_the_hot_path_is_compiled() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
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
            "compiled": "true" if service.NATIVE.compiled else "false",
        }
    ]


# -- the staleness rule, on a fake build (existence of the files is what counts) ---------


def _fake_build(tmp_path: Path) -> Path:
    package = tmp_path / "service"
    for module in NATIVE_MODULES:
        source = native.source_path(PACKAGE_DIR, module)
        target = native.source_path(package, module)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        native.extension_path(package, module).write_bytes(b"")
    manifest = {"modules": native.source_hashes(package)}
    (package / MANIFEST).write_text(json.dumps(manifest))
    return package


def test_a_build_of_these_sources_is_current(tmp_path: Path) -> None:
    assert native.stale(_fake_build(tmp_path)) is None


def test_a_source_changed_after_the_build_makes_it_stale(tmp_path: Path) -> None:
    package = _fake_build(tmp_path)
    codec = native.source_path(package, "service.codec")
    codec.write_text(codec.read_text() + "\n# edited\n")
    reason = native.stale(package)
    assert reason is not None and reason.startswith("codec.py changed after the native build")


def test_a_compiled_module_the_build_does_not_list_makes_it_stale(tmp_path: Path) -> None:
    # left from a build with a longer list, it would load without its source being checked
    package = _fake_build(tmp_path)
    shared = native.extension_path(package, native.SHARED_LIBRARY)
    shared.write_bytes(b"")  # the build's own shared library is expected
    assert native.stale(package) is None
    leftover = native.extension_path(package, "service.ratelimit")
    leftover.write_bytes(b"")
    assert str(native.stale(package)).startswith(f"{leftover.name} is compiled but not in")


def test_a_build_without_its_manifest_or_a_module_is_stale(tmp_path: Path) -> None:
    package = _fake_build(tmp_path)
    native.extension_path(package, "service.records").unlink()
    assert "lacks service.records" in str(native.stale(package))
    (package / MANIFEST).unlink()
    assert f"without a readable {MANIFEST}" in str(native.stale(package))


# -- what the package does at import, in a copy of it ------------------------------------


def _copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE_DIR, tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _imported(root: Path, **env: str) -> dict[str, str]:
    """Which files the copy's codec and pipeline load from, and the package's verdict."""
    code = (
        "import json, service, service.codec, service.pipeline; "
        "print(json.dumps({'codec': service.codec.__file__, "
        "'pipeline': service.pipeline.__file__, 'state': service.NATIVE.describe()}))"
    )
    environ = {k: v for k, v in os.environ.items() if k != PURE_PYTHON_ENV} | env
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: dict[str, str] = json.loads(result.stdout)
    return loaded


@pytest.mark.usefixtures("compiled")
def test_an_edited_source_is_used_instead_of_its_stale_compiled_module(tmp_path: Path) -> None:
    root = _copy_of_the_package(tmp_path)
    assert _imported(root)["codec"].endswith(".so")
    codec = root / "service" / "codec.py"
    codec.write_text(codec.read_text() + "\n# edited\n")
    loaded = _imported(root)
    # all of the package, not only the edited module: compiled modules call each other
    assert loaded["codec"] == str(codec) and loaded["pipeline"].endswith("pipeline.py")
    assert loaded["state"].startswith("pure Python: codec.py changed after the native build")


@pytest.mark.usefixtures("compiled")
def test_service_pure_python_runs_every_module_from_source(tmp_path: Path) -> None:
    loaded = _imported(_copy_of_the_package(tmp_path), **{PURE_PYTHON_ENV: "1"})
    assert loaded["codec"].endswith("codec.py") and loaded["pipeline"].endswith("pipeline.py")
    assert loaded["state"] == f"pure Python: {PURE_PYTHON_ENV} is set"


def test_without_a_build_the_package_is_pure_python(tmp_path: Path) -> None:
    root = _copy_of_the_package(tmp_path)
    for built in (root / "service").rglob("*.so"):
        built.unlink()
    loaded = _imported(root)
    assert loaded["codec"].endswith("codec.py")
    assert loaded["state"] == "pure Python (no native build)"


@pytest.fixture
def compiled() -> None:
    if not service.NATIVE.compiled:
        pytest.fail(f"{service.NATIVE.describe()}: {REBUILD}")


def test_the_unit_suite_passes_on_the_pure_python_path() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=REPO_ROOT,
        env={**os.environ, PURE_PYTHON_ENV: "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
