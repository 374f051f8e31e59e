"""Keeps the layering of docs/architecture.md true: import-linter's contracts (pyproject.toml,
`[tool.importlinter]`) hold for the package, and break on an injected bad import; only the
entry points read the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE = REPO_ROOT / "service"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package found first from `root` (a copy, or the repository)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_every_import_linter_contract_is_kept() -> None:
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 kept, 0 broken" in result.stdout


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    shutil.copytree(SERVICE, tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO_ROOT / "devstack", tmp_path / "devstack", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("core/batching.py", "import httpx", "the core does no I/O"),
        ("core/model.py", "from service.loop import workers", "entry points over the loop"),
        ("loop/caller.py", "from service.adapters import hubspot", "entry points over the loop"),
        ("loop/publisher.py", "import confluent_kafka", "the loop reaches Kafka"),
        ("loop/caller.py", "import opentelemetry.trace", "the loop reaches Kafka"),
        ("core/records.py", "import opentelemetry.trace", "the core does no I/O"),
        ("adapters/logs.py", "from service.adapters import tracing", "adapters do not import"),
        ("adapters/kafka.py", "from service.adapters import logs", "adapters do not import"),
        ("entry/app.py", "import devstack.emulator", "the dev stack"),
    ],
)
def test_an_injected_bad_import_breaks_its_contract(
    copy_of_the_code: Path, module: str, bad_import: str, broken: str
) -> None:
    path = copy_of_the_code / "service" / module
    source = path.read_text()
    marker = "from __future__ import annotations\n"
    path.write_text(source.replace(marker, f"{marker}\n{bad_import}  # noqa\n", 1))
    result = _lint_imports(copy_of_the_code)
    assert result.returncode != 0
    broken_lines = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(broken) for line in broken_lines), result.stdout[-3000:]


def test_only_the_entry_points_read_the_environment() -> None:
    for path in sorted(SERVICE.rglob("*.py")):
        if path.parent.name == "entry":
            continue
        source = path.read_text()
        where = path.relative_to(REPO_ROOT)
        assert "os.environ" not in source and "getenv" not in source, where
