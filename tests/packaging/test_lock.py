"""requirements.lock: what the image installs (pip --require-hashes) and the tests run on;
requirements-build.lock: what compiles its hot path (mypyc, in mypy).

The first must pin every runtime dependency of pyproject.toml within its range, with hashes,
and hold no development tool; the second pins the compiler, with hashes, at the versions the
first has for what they share. The .venv the tests use must have exactly these versions.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"  # what compiles the hot path
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def _entries(lock: Path = LOCK) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its sha256 hashes), continuation lines joined."""
    entries: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in lock.read_text().splitlines():
        pin = PIN.match(line)
        if pin:
            current = canonicalize_name(pin.group(1))
            entries[current] = (Version(pin.group(2)), [])
        elif current and line.strip().startswith("--hash="):
            entries[current][1].append(line.strip().removeprefix("--hash=").rstrip(" \\"))
        elif not line.startswith(" "):
            current = None
    return entries


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def _dev_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["optional-dependencies"]["dev"]]


@pytest.mark.parametrize("requirement", _runtime_requirements(), ids=str)
def test_each_runtime_dependency_is_pinned_within_its_range(requirement: Requirement) -> None:
    entries = _entries()
    name = canonicalize_name(requirement.name)
    assert name in entries, f"{name} is not in requirements.lock: run scripts/lock"
    version, _ = entries[name]
    assert requirement.specifier.contains(version), f"{name}=={version} is outside {requirement}"


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_every_pin_carries_sha256_hashes(lock: Path) -> None:
    entries = _entries(lock)
    assert len(entries) >= (len(_runtime_requirements()) if lock == LOCK else 2)
    for name, (_, hashes) in entries.items():
        assert hashes, f"{name} has no hash"
        for digest in hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (name, digest)


def _applies_here(lock: Path, name: str) -> bool:
    """Whether the pin's environment marker (e.g. `sys_platform == 'emscripten'`) holds here."""
    for line in lock.read_text().splitlines():
        pin = PIN.match(line)
        if pin and canonicalize_name(pin.group(1)) == name:
            return pin.group(3) is None or Marker(pin.group(3)).evaluate()
    return False


def _needed_at_run_time() -> set[str]:
    """The runtime dependencies and, from their installed metadata, everything they need
    (markers for this platform, with the extras asked for): a dev dependency may be one of
    those (protobuf, which the OTLP exporter needs too), and is then in the lock for that
    reason."""
    seen: set[tuple[str, str]] = set()
    todo = [r for r in _runtime_requirements() if r.marker is None or r.marker.evaluate()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = {""} | set(requirement.extras)
        if {(name, extra) for extra in extras} <= seen:
            continue
        seen |= {(name, extra) for extra in extras}
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if child.marker is None or any(
                child.marker.evaluate({"extra": extra}) for extra in extras
            ):
                todo.append(child)
    return {name for name, _ in seen}


def test_no_development_tool_is_locked_into_the_image() -> None:
    """A dev dependency is locked only when the runtime needs it too (cryptography, which the
    tests use to make certificates, comes with the registry client's authlib)."""
    entries = _entries()
    needed = _needed_at_run_time()
    assert {"protobuf", "opentelemetry-api", "h11"} <= needed  # deep enough to mean something
    for requirement in _dev_requirements():
        name = canonicalize_name(requirement.name)
        if name not in needed:
            assert name not in entries, f"dev dependency {name} is in requirements.lock"


def test_the_build_lock_holds_the_compiler_and_agrees_with_the_runtime_lock() -> None:
    build, runtime = _entries(BUILD_LOCK), _entries()
    assert {"mypy", "setuptools"} <= build.keys()
    for name in build.keys() & runtime.keys():
        assert build[name][0] == runtime[name][0], f"{name}: the locks disagree; run scripts/lock"


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_the_tests_run_the_versions_the_image_ships_and_is_built_with(lock: Path) -> None:
    for name, (version, _) in _entries(lock).items():
        if not _applies_here(lock, name):
            continue  # e.g. httpx2-jsfetch, for Python in a browser only
        installed = Version(metadata.version(name))
        assert installed == version, (
            f"{name} {installed} is installed, the lock has {version}: run scripts/bootstrap"
        )
