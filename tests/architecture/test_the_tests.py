"""Keeps two promises of the test suite, by reading its source (no test is run):

- every test asserts something: a test function holds an `assert`, a `pytest.raises`,
  `pytest.warns` or `pytest.fail`, or calls a helper of the suite named `assert…`, `check…` or
  `expect…` (with or without a leading underscore) that itself does one of these;
- no test names a path outside the repository: no `Path(...)` or `open(...)` of an absolute
  path but the machine's own (/proc, /etc, /usr, ...: places of the system, not files of this
  project), and no `Path(__file__).parents[...]` that climbs above the repository's root.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS = REPO_ROOT / "tests"
HELPER = re.compile(r"^_?(assert|check|expect)")
PYTEST_CHECKS = frozenset({"raises", "warns", "fail"})
SYSTEM_ROOTS = frozenset({"bin", "dev", "etc", "opt", "proc", "run", "sys", "tmp", "usr", "var"})
Function = ast.FunctionDef | ast.AsyncFunctionDef


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _functions(tree: ast.AST) -> Iterator[Function]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _checks_directly(function: Function, helpers: set[str]) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            func, name = node.func, _called(node)
            on_pytest = isinstance(func, ast.Attribute) and _is_pytest(func.value)
            if (on_pytest and name in PYTEST_CHECKS) or name in helpers:
                return True
    return False


def _is_pytest(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "pytest"


def _checking_helpers(functions: list[Function]) -> set[str]:
    """Names of the suite's assert/check/expect helpers that check something (a helper may
    check through another)."""
    named = [f for f in functions if HELPER.match(f.name)]
    helpers: set[str] = set()
    while True:
        found = {f.name for f in named if _checks_directly(f, helpers)}
        if found <= helpers:
            return helpers
        helpers |= found


def _tests_that_check_nothing() -> list[str]:
    modules = list(_modules())
    helpers = _checking_helpers([f for _, tree in modules for f in _functions(tree)])
    return [
        f"{path.relative_to(REPO_ROOT)}:{function.lineno} {function.name}"
        for path, tree in modules
        if path.name.startswith("test_")
        for function in _functions(tree)
        if function.name.startswith("test_") and not _checks_directly(function, helpers)
    ]


def test_every_test_asserts_something() -> None:
    assert _tests_that_check_nothing() == []


def _outside_paths(path: Path, tree: ast.Module) -> Iterator[str]:
    depth = len(path.relative_to(REPO_ROOT).parts) - 1  # parents[depth] is the root
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO_ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and _called(node) in {"Path", "open"} and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                top = first.value.split("/")[1] if first.value.startswith("/") else None
                if top is not None and top not in SYSTEM_ROOTS:
                    yield f"{where} {first.value}"
        if _is_parents_index(node) and isinstance(node, ast.Subscript):
            index = node.slice.value if isinstance(node.slice, ast.Constant) else None
            above = isinstance(parents.get(node), ast.Attribute)  # .parent of the root
            if isinstance(index, int) and (index > depth or (index == depth and above)):
                yield f"{where} parents[{index}]{'.parent' if above else ''}"


def _is_parents_index(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
    )


def test_no_test_names_a_path_outside_the_repository() -> None:
    found = [problem for path, tree in _modules() for problem in _outside_paths(path, tree)]
    assert found == []


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("def test_x():\n    run()\n", True),
        ("def test_x():\n    check_files()\n", True),  # a check/assert name alone is not enough
        ("def test_x():\n    assert run()\n", False),
        ("def test_x():\n    with pytest.raises(E):\n        run()\n", False),
        ("def _assert_ok(v):\n    assert v\ndef test_x():\n    _assert_ok(run())\n", False),
    ],
)
def test_the_assertion_rule_tells_a_test_that_checks_from_one_that_does_not(
    source: str, caught: bool
) -> None:
    tree = ast.parse(source)
    functions = list(_functions(tree))
    helpers = _checking_helpers(functions)
    test = next(f for f in functions if f.name == "test_x")
    assert (not _checks_directly(test, helpers)) is caught


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ('SPECS = Path("/work/shared/hubspot-openapi")\n', True),
        ("ROOT = Path(__file__).resolve().parents[2].parent / 'shared'\n", True),
        ("ROOT = Path(__file__).resolve().parents[3]\n", True),
        ("ROOT = Path(__file__).resolve().parents[2] / 'tests'\n", False),
        ('PROC = Path("/proc")\n', False),
    ],
)
def test_the_path_rule_tells_a_path_outside_from_one_inside(source: str, caught: bool) -> None:
    in_a_test_folder = TESTS / "emulator" / "test_example.py"  # depth 2: parents[2] is the root
    assert bool(list(_outside_paths(in_a_test_folder, ast.parse(source)))) is caught
