"""Field paths into a decoded event: JMESPath expressions, compiled once at start-up.

A plain path of field names and list indexes (`customer.id`, `items[0].price`, `items[-1]`)
is read with dictionary and list lookups, which is what JMESPath does for it and much faster
(it runs for every entry of every event); anything else (`sum(items[].quantity)`, filters,
functions) runs through the `jmespath` package. Either way a missing field, an index out of
range, or a step into something of another kind gives None.
JMESPath's functions take decimals (Avro and Protobuf decimals decode as `Decimal`) as
numbers, so `sum(items[].amount)` stays exact. A path that fails on an event (a function
given the wrong type) raises PathError. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jmespath
from jmespath import functions
from jmespath.exceptions import JMESPathError

from service.core.mapping.spec import Lookup

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_SEGMENT = rf"{_NAME}(?:\[-?[0-9]+\])*"
_PLAIN = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
_STEP = re.compile(rf"({_NAME})|\[(-?[0-9]+)\]")


class PathError(Exception):
    """A path could not be evaluated on an event; the message says why."""


class _Functions(functions.Functions):
    """JMESPath's built-in functions, with `Decimal` accepted wherever a number is."""

    def _get_allowed_pytypes(self, types: Sequence[str]) -> tuple[list[str], list[Any]]:
        # a private hook of jmespath's Functions (1.x), not in its type stubs
        allowed, subtypes = super()._get_allowed_pytypes(types)  # type: ignore[misc]
        return _with_decimal(allowed), [_with_decimal(list(group)) for group in subtypes]


def _with_decimal(names: list[str]) -> list[str]:
    return [*names, "Decimal"] if "int" in names else names


_OPTIONS = jmespath.Options(custom_functions=_Functions())


def compile_path(text: str) -> Lookup:
    """A lookup for `text`; raises jmespath's ParseError for an expression it cannot read."""
    if _PLAIN.fullmatch(text):
        return _plain(_steps(text))
    expression = jmespath.compile(text)

    def search(document: object) -> object:
        try:
            return expression.search(document, options=_OPTIONS)
        except (JMESPathError, TypeError, ValueError, ArithmeticError) as exc:
            raise PathError(f"`{text}` failed: {exc}") from None

    return search


def parse_problem(text: str) -> str | None:
    """Why `text` is not a JMESPath expression (None when it is one)."""
    try:
        compile_path(text)
    except JMESPathError as exc:
        where = getattr(exc, "lex_position", None)
        detail = getattr(exc, "msg", None) or str(exc).splitlines()[0]
        if getattr(exc, "message", None):  # the lexer's own words (an unclosed quote)
            detail = exc.message  # type: ignore[attr-defined]
        return f"{detail} (at character {where})" if where is not None else detail
    return None


def _steps(text: str) -> tuple[str | int, ...]:
    """`a.b[0][-1].c` -> ("a", "b", 0, -1, "c")."""
    return tuple(
        name if name else int(index) for name, index in _STEP.findall(text.replace(".", " "))
    )


def _plain(steps: tuple[str | int, ...]) -> Lookup:
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]

        def field(document: object) -> object:
            return document.get(key) if type(document) is dict else None

        return field

    def walk(document: object) -> object:
        current = document
        for step in steps:
            if type(current) is dict and type(step) is str:
                current = current.get(step)
            elif type(current) is list and type(step) is int:
                current = current[step] if -len(current) <= step < len(current) else None
            else:
                return None
        return current

    return walk
