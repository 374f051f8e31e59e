"""Reading one mapping entry's conversion: its type and the options that type takes.

Shared by service/core/mapping/document.py, which reads the rest of the file: collects one
problem line per mistake (`properties.hs_status: ...`), never stops at the first. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.core.mapping.spec import Conversion, Kind, Missing, TimeFormat, Unit

_TIMESTAMP_OPTIONS = ("unit", "timezone", "format")
_ENUM_OPTIONS = ("values", "default")
_Choice = TypeVar("_Choice", Kind, Missing, Unit, TimeFormat)
# YAML 1.1 reads these unquoted words as booleans: a common surprise in an enum's value map.
_YAML_BOOLEAN_HINT = " (quote it: YAML reads yes/no/on/off/true/false as booleans)"


class EntryOptions:
    """Collects problems; reads an entry's type and options."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, entry: str, message: str) -> None:
        self.problems.append(f"{entry}: {message}" if entry else message)

    def unknown_keys(self, entry: str, spec: Mapping[Any, Any], known: tuple[str, ...]) -> None:
        for key in spec:
            if key not in known:
                where = f"{entry}.{key}" if entry else str(key)
                self.problem(where, f"unknown key (expected one of: {', '.join(known)})")

    def conversion(self, entry: str, spec: dict[Any, Any]) -> Conversion:
        kind = self.choice(entry, "type", spec.get("type", "string"), Kind, Kind.STRING)
        self.options_fit(entry, spec, kind)
        if kind is Kind.ENUM:
            values, default = self.value_map(entry, spec)
            return Conversion(kind=kind, values=values, default=default)
        if kind not in (Kind.DATETIME, Kind.DATE):
            return Conversion(kind=kind)
        unit = self.choice(entry, "unit", spec.get("unit", "ms"), Unit, Unit.MILLISECONDS)
        output = self.choice(entry, "format", spec.get("format", "iso"), TimeFormat, TimeFormat.ISO)
        return Conversion(kind=kind, unit=unit, zone=self.zone(entry, spec), output=output)

    def options_fit(self, entry: str, spec: dict[Any, Any], kind: Kind) -> None:
        for option in _TIMESTAMP_OPTIONS:
            if option in spec and kind not in (Kind.DATETIME, Kind.DATE):
                self.problem(entry, f"`{option}` applies to type datetime or date only")
        for option in _ENUM_OPTIONS:
            if option in spec and kind is not Kind.ENUM:
                self.problem(entry, f"`{option}` applies to type enum only")

    def value_map(self, entry: str, spec: dict[Any, Any]) -> tuple[dict[str, str], str | None]:
        raw = spec.get("values")
        if not isinstance(raw, dict) or not raw:
            self.problem(
                entry, "type enum needs `values`: a map from the event's symbols to HubSpot's"
            )
            return {}, None
        values = {}
        for symbol, target in raw.items():
            key, text = (
                self.enum_text(entry, symbol, "symbol"),
                self.enum_text(entry, target, "value"),
            )
            if key is not None and text is not None:
                values[key] = text
        default = spec.get("default")
        return values, None if default is None else self.enum_text(entry, default, "`default`")

    def enum_text(self, entry: str, value: object, what: str) -> str | None:
        if isinstance(value, bool):
            self.problem(entry, f"the {what} {value!r} is a boolean{_YAML_BOOLEAN_HINT}")
            return None
        if isinstance(value, str | int):
            return str(value)
        self.problem(entry, f"the {what} {value!r} is {kind_of(value)}, not text")
        return None

    def zone(self, entry: str, spec: dict[Any, Any]) -> str:
        name = spec.get("timezone", "UTC")
        try:
            ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(entry, f"`timezone` {name!r} is not an IANA time zone (e.g. Europe/Paris)")
            return "UTC"
        return str(name)

    def on_missing(self, entry: str, raw: object) -> Missing:
        return self.choice(entry, "on_missing", raw, Missing, Missing.OMIT)

    def choice(
        self, entry: str, option: str, raw: object, enum: type[_Choice], fallback: _Choice
    ) -> _Choice:
        try:
            return enum(str(raw))
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            self.problem(entry, f"`{option}` {raw!r} is not one of {allowed}")
            return fallback


def kind_of(value: object) -> str:
    """What a value of the file is, in a problem's words."""
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean",
             int: "a number", float: "a number", type(None): "empty"}  # fmt: skip
    return names.get(type(value), type(value).__name__)
