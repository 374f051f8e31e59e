"""Table rows with targets, and the JSON file each scenario writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "figure", "measured", "target", "result")
WIDTHS = (14, 42, 20, 28, 6)


@dataclass(frozen=True, slots=True)
class Check:
    """One figure: its measured value (shown), the target, and PASS/MISS (None: no target)."""

    figure: str
    shown: str
    value: float | None = None
    target: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "PASS" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "measured": self.value,
            "shown": self.shown,
            "target": self.target or None,
            "pass": self.passed,
        }


def at_least(figure: str, value: float | None, minimum: float, shown: str, target: str) -> Check:
    return Check(figure, shown, value, target, value is not None and value >= minimum)


def below(figure: str, value: float | None, maximum: float, shown: str, target: str) -> Check:
    return Check(figure, shown, value, target, value is not None and value < maximum)


def info(figure: str, shown: str, value: float | None = None) -> Check:
    return Check(figure, shown, value)


@dataclass
class ScenarioResult:
    name: str
    checks: list[Check] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    def to_json(self, mode: str, machine: dict[str, object]) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "mode": mode,
            "machine": machine,
            "config": self.config,
            "targets": [c.to_json() for c in self.checks if c.passed is not None],
            "figures": [c.to_json() for c in self.checks],
            "measured": self.measured,
            "passed": self.passed,
        }

    def write(self, out_dir: Path, mode: str, machine: dict[str, object]) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        document = self.to_json(mode, machine)
        path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        return path


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)) + " |"


def table_header() -> list[str]:
    return [_line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in WIDTHS) + "|"]


def table_rows(result: ScenarioResult) -> list[str]:
    return [_line((result.name, c.figure, c.shown, c.target, c.verdict)) for c in result.checks]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"
