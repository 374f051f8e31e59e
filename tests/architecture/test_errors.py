"""Keeps service/core/errors.py's exception tree true: the tree its docstring draws is the
classes' real hierarchy under the one root, ServiceError, and no error class sits there
that the service never raises (each leaf is constructed somewhere in service/)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from service.core import errors

SERVICE = Path(__file__).resolve().parents[2] / "service"
_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*Error)\b")


def _drawn() -> dict[str, str | None]:
    """Each class the docstring draws, with the class drawn as its parent (None: the root)."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the open branches
    for line in (errors.__doc__ or "").splitlines():
        found = _TREE_LINE.match(line.strip("\n").removeprefix("    "))
        if found is None:
            continue
        column = len(found["indent"])
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[found["name"]] = stack[-1][1] if stack else None
        stack.append((column, found["name"]))
    return parents


def _defined() -> dict[str, str | None]:
    """Each exception class errors.py defines, with its base (None: Exception itself)."""
    classes = inspect.getmembers(errors, inspect.isclass)
    return {
        name: (None if cls.__bases__ == (Exception,) else cls.__bases__[0].__name__)
        for name, cls in classes
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }


def _constructed() -> set[str]:
    """Names called anywhere in service/ outside errors.py (`Name(...)`, `mod.Name(...)`)."""
    called: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                called.add(name)
    return called


def test_the_docstring_draws_the_real_tree_under_one_root() -> None:
    defined = _defined()
    assert _drawn() == defined
    assert [name for name, base in defined.items() if base is None] == ["ServiceError"]


def test_every_leaf_error_is_raised_somewhere() -> None:
    defined = _defined()
    leaves = set(defined) - {base for base in defined.values() if base is not None}
    assert leaves - _constructed() == set(), "error classes nothing raises: remove them"
