"""Keeps the layering of docs/architecture.md true, by walking every import in service/."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"

CORE = {
    "errors",
    "model",
    "clock",
    "ids",
    "batching",
    "offsets",
    "codec",
    "ratelimit",
    "responses",
    "mapping",
    "records",
    "retry",
    "health",
    "ordering",
    "handover",
}
# Pure data libraries a core module may use: no I/O, no clients.
CORE_THIRD_PARTY = {"pydantic", "orjson"}
IO_LIBRARIES = {"confluent_kafka", "httpx", "prometheus_client"}

ALLOWED_SERVICE_IMPORTS: dict[str, set[str]] = {
    "ports": CORE,
    "config": CORE,
    "metrics": CORE | {"__init__"},
    "logs": CORE,
    "workers": CORE,
    "caller": CORE | {"ports", "metrics", "config"},
    "pipeline": CORE | {"ports", "metrics", "config", "workers", "records", "commit", "publisher"},
    "commit": CORE | {"ports"},
    "publisher": CORE | {"ports", "metrics"},
    "server": CORE | {"metrics"},
    "adapters.kafka": CORE | {"ports", "__init__"},
    "adapters.hubspot": CORE | {"ports", "__init__"},
    # decides, at the package's import, whether the compiled hot path loads: nothing else
    "native": set(),
}
COMPOSITION_ROOT = {"app", "__main__", "redrive"}


def _module_name(path: Path) -> str:
    relative = path.relative_to(SERVICE).with_suffix("")
    return ".".join(relative.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _service_internal(name: str) -> str | None:
    if name == "service":
        return "__init__"
    return name.removeprefix("service.") if name.startswith("service.") else None


MODULES = sorted(p for p in SERVICE.rglob("*.py") if p.name != "__init__.py" or p.parent != SERVICE)


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_module_imports_follow_the_layers(path: Path) -> None:
    module = _module_name(path).removesuffix(".__init__")
    if module in COMPOSITION_ROOT or module == "adapters":
        return
    imports = _imports(path)
    internal = {i for name in imports if (i := _service_internal(name)) is not None}
    external = {name.split(".")[0] for name in imports if _service_internal(name) is None}
    assert "devstack" not in external, "the emulator and dev stack must not be on the service path"
    if module in CORE:
        third_party = external - set(sys.stdlib_module_names)
        assert third_party <= CORE_THIRD_PARTY, f"core module {module} imports {third_party}"
        assert internal <= CORE, f"core module {module} imports {internal - CORE}"
        return
    allowed = ALLOWED_SERVICE_IMPORTS.get(module)
    assert allowed is not None, f"{module} has no place in the layers; add it to this test"
    assert internal <= allowed, f"{module} imports {internal - allowed}"
    if not module.startswith("adapters") and module not in {"metrics", "server"}:
        assert not external & IO_LIBRARIES, f"{module} imports {external & IO_LIBRARIES}"


def test_adapters_do_not_import_each_other_or_the_pipeline() -> None:
    for path in (SERVICE / "adapters").glob("*.py"):
        internal = {i for name in _imports(path) if (i := _service_internal(name))}
        assert not {i for i in internal if i.startswith("adapters")}, path.name
        assert not internal & {"pipeline", "caller", "app"}, path.name


def test_only_the_composition_root_reads_the_environment() -> None:
    for path in MODULES:
        module = _module_name(path)
        if module in COMPOSITION_ROOT or module == "config":
            continue
        source = path.read_text()
        assert "os.environ" not in source and "getenv" not in source, module


def test_the_package_reads_the_environment_only_to_choose_its_compiled_hot_path() -> None:
    # The one exception to the rule above: SERVICE_PURE_PYTHON must be read before any
    # module loads, so `service/__init__.py` hands the environment to native.choose.
    source = (SERVICE / "__init__.py").read_text()
    assert source.count("os.environ") == 1 and "getenv" not in source
    assert "_native.choose(Path(__file__).parent, os.environ)" in source
