"""Every relative link in the README and docs/ points at a file of this repository (and at a
heading of it, when it names one of a Markdown page), and every page of docs/ says first who it
is for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.markdown import DOCS, README, REPO, anchors, relative_links

PAGES = [README, *sorted(DOCS.glob("*.md")), REPO / "bench" / "README.md"]


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_points_at_a_file_in_the_repository(page: Path) -> None:
    broken = []
    for target in relative_links(page.read_text()):
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        inside = resolved.is_relative_to(REPO)
        if not inside or not resolved.exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_anchor_names_a_heading_of_its_page(page: Path) -> None:
    unknown = []
    for target in relative_links(page.read_text()):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        checkable = anchor and resolved.suffix == ".md" and resolved.exists()
        if checkable and anchor not in anchors(resolved.read_text()):
            unknown.append(target)
    assert unknown == []


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_page_names_a_path_of_this_machine(page: Path) -> None:
    text = page.read_text()
    assert str(REPO) not in text
    assert all(not target.startswith("/") for target in relative_links(text))


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=_name)
def test_every_docs_page_starts_by_saying_who_it_is_for(page: Path) -> None:
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# "), "a title first"
    first_paragraph = next(line for line in lines[1:] if line.strip())
    assert first_paragraph.startswith(("For ", "For:")), first_paragraph
