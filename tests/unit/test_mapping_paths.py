"""Field paths (service/core/mapping/paths.py): the fast path for plain field and index paths
gives exactly what JMESPath gives, on any document; everything else runs through JMESPath,
with decimals taken as numbers by its functions."""

from __future__ import annotations

from decimal import Decimal

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.core.mapping.paths import PathError, compile_path, parse_problem

PLAIN = ["a", "a.b", "a.b.c", "a[0]", "a[-1]", "a[1].b", "a.b[0][1]", "a[0][0].b", "b[3]", "_x.y9"]
keys = st.sampled_from(["a", "b", "c", "_x", "y9"])
leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3))
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@given(documents)
def test_plain_paths_read_what_jmespath_reads(document: object) -> None:
    for path in PLAIN:
        assert compile_path(path)(document) == jmespath.search(path, document), path


@pytest.mark.parametrize("path", PLAIN)
def test_plain_paths_take_the_fast_path(path: str) -> None:
    assert compile_path(path).__name__ in ("field", "walk")


@pytest.mark.parametrize("path", ["sum(a[].b)", "a[?b > `1`].c", "a[*].b", "a.b | [0]", "a[1:]"])
def test_other_paths_run_through_jmespath(path: str) -> None:
    assert compile_path(path).__name__ == "search"


def test_functions_take_decimals_as_numbers() -> None:
    document = {"items": [{"amount": Decimal("0.1")}, {"amount": Decimal("0.2")}]}
    assert compile_path("sum(items[].amount)")(document) == Decimal("0.3")
    assert compile_path("max(items[].amount)")(document) == Decimal("0.2")
    assert compile_path("items[?amount > `0.15`].amount | [0]")(document) == Decimal("0.2")


def test_a_path_that_fails_on_an_event_says_why() -> None:
    with pytest.raises(PathError, match="`sum\\(items\\)` failed: "):
        compile_path("sum(items)")({"items": ["a"]})


def test_parse_problems() -> None:
    assert parse_problem("a.b[0]") is None
    assert parse_problem("a[") == "Invalid jmespath expression (at character 2)"
