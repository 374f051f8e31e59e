"""Whether the hot path runs compiled, and the rule that keeps a compiled module honest.

`scripts/build_native.py` compiles the modules of NATIVE_MODULES with mypyc (the per-event
path: reading, batching, tracking offsets, building results) into extension modules next
to their sources, and writes MANIFEST: the sha256 of every source it compiled. The image
ships that build. A compiled module is only used while it was built from the source beside
it: when any is stale, or PURE_PYTHON_ENV asks for it, the whole package imports from its
sources instead (the same code, slower), and the start-up log says why.

Standard library only: the package's `__init__` decides before any other module loads.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PACKAGE = "service"
# The shared library mypyc puts the compiled modules' code in: service/_compiled__mypyc.*.so
GROUP_NAME = f"{PACKAGE}._compiled"
SHARED_LIBRARY = f"{GROUP_NAME}__mypyc"
NATIVE_MODULES = (
    "service.model",
    "service.ids",
    "service.codec",
    "service.records",
    "service.ordering",
    "service.offsets",
    "service.batching",
    "service.publisher",
    "service.responses",
    "service.mapping",
    "service.handover",
    "service.workers",
    "service.pipeline",
)
MANIFEST = "native.json"
_EXT_SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"  # of this interpreter's builds
PURE_PYTHON_ENV = "SERVICE_PURE_PYTHON"
_YES = frozenset({"1", "true", "yes"})
_REBUILD = "run scripts/build_native.py (or remove the build: scripts/build_native.py --clean)"


@dataclass(frozen=True)
class NativeState:
    """`compiled`: the modules that load as extension modules. `reason`: why a build that
    exists is not used (None when it is, or when there is no build)."""

    compiled: tuple[str, ...]
    reason: str | None = None

    def describe(self) -> str:
        if self.compiled:
            return f"compiled with mypyc ({len(self.compiled)} hot-path modules)"
        if self.reason:
            return f"pure Python: {self.reason}"
        return "pure Python (no native build)"


def source_path(package_dir: Path, module: str) -> Path:
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def extension_path(package_dir: Path, module: str) -> Path:
    name = module.rsplit(".", 1)[1] + _EXT_SUFFIX
    return package_dir.joinpath(*module.split(".")[1:]).with_name(name)


def source_hashes(package_dir: Path) -> dict[str, str]:
    return {
        module: hashlib.sha256(source_path(package_dir, module).read_bytes()).hexdigest()
        for module in NATIVE_MODULES
    }


def stale(package_dir: Path) -> str | None:
    """Why the compiled modules beside the sources must not be used; None when they may."""
    built = [m for m in NATIVE_MODULES if extension_path(package_dir, m).exists()]
    manifest_file = package_dir / MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text())
        recorded: dict[str, str] = manifest["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"compiled modules without a readable {MANIFEST}; {_REBUILD}"
    if sorted(built) != sorted(NATIVE_MODULES):
        missing = sorted(set(NATIVE_MODULES) - set(built))
        return f"the native build lacks {', '.join(missing)}; {_REBUILD}"
    unlisted = _unlisted_extensions(package_dir)
    if unlisted:  # it would load, unchecked: e.g. left from a build with a longer list
        return f"{unlisted[0]} is compiled but not in the native build; {_REBUILD}"
    current = source_hashes(package_dir)
    changed = [m for m in NATIVE_MODULES if recorded.get(m) != current[m]]
    if changed:
        names = ", ".join(str(source_path(package_dir, m).name) for m in changed)
        return f"{names} changed after the native build; {_REBUILD}"
    return None


def _unlisted_extensions(package_dir: Path) -> list[str]:
    expected = {extension_path(package_dir, m) for m in (*NATIVE_MODULES, SHARED_LIBRARY)}
    return sorted(
        str(path.relative_to(package_dir))
        for path in package_dir.rglob("*" + _EXT_SUFFIX)
        if path not in expected
    )


def choose(package_dir: Path, environ: Mapping[str, str]) -> NativeState:
    """Decide, once, at the package's import: compiled modules, or sources for all."""
    if not any(extension_path(package_dir, m).exists() for m in NATIVE_MODULES):
        return NativeState(compiled=())
    if environ.get(PURE_PYTHON_ENV, "").strip().lower() in _YES:
        reason: str | None = f"{PURE_PYTHON_ENV} is set"
    else:
        reason = stale(package_dir)
    if reason is not None:
        sys.meta_path.insert(0, SourceOnlyFinder(PACKAGE))
        return NativeState(compiled=(), reason=reason)
    return NativeState(compiled=NATIVE_MODULES)


class SourceOnlyFinder(importlib.abc.MetaPathFinder):
    """Finds the package's modules from their `.py` files only, never an extension module."""

    def __init__(self, package: str) -> None:
        self._prefix = package + "."

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(self._prefix) or path is None:
            return None
        loader = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, loader).find_spec(fullname, target)
            if spec is not None:
                return spec
        return None
