"""Just enough Markdown reading for the documentation tests: pipe tables, links, anchors."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def table(text: str, header: list[str]) -> list[dict[str, str]]:
    """The rows of the one pipe table whose header row is `header`, as column -> cell text."""
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("|") and cells(line) == header]
    assert len(starts) == 1, f"expected one table headed {header}, found {len(starts)}"
    rows: list[dict[str, str]] = []
    for line in lines[starts[0] + 2 :]:  # past the header and its delimiter row
        if not line.startswith("|"):
            break
        row = cells(line)
        assert len(row) == len(header), f"row with {len(row)} cells: {line}"
        rows.append(dict(zip(header, row, strict=True)))
    return rows


def cells(line: str) -> list[str]:
    """A table row's cells, stripped; `\\|` inside a cell is text, not a separator."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


def code_names(cell: str) -> list[str]:
    """The names a cell gives in backticks, in order (`A`, `B` -> [A, B])."""
    return re.findall(r"`([^`]+)`", cell)


def anchors(text: str) -> set[str]:
    """The anchors GitHub makes for a page's headings (lower case, punctuation dropped,
    spaces to hyphens); headings inside fenced code are not headings."""
    headings = re.findall(r"^#{1,6} +(.+?) *#*$", _FENCE.sub("", text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def relative_links(text: str) -> list[str]:
    """Link targets that point into the repository: no URL, no bare anchor, no code."""
    prose = _CODE_SPAN.sub("", _FENCE.sub("", text))
    targets = _LINK.findall(prose)
    return [target for target in targets if not _SCHEME.match(target) and target[0] != "#"]
