"""An event mapping in its normalised form: what `check-config` prints of the loaded file.

Every entry with its path or converted constant, its type and every option that type takes
(defaults filled in), so an operator sees exactly what the service will do. Pure.
"""

from __future__ import annotations

from service.core.mapping.spec import CopyRule, Kind, Rule


def describe(
    rules: tuple[Rule | None, ...],
    properties: tuple[Rule, ...],
    copy: CopyRule | None,
) -> dict[str, object]:
    """The mapping as check-config prints it: every entry with its defaults filled in."""
    described: dict[str, object] = {}
    for key, rule in zip(("id", "idProperty", "objectWriteTraceId"), rules, strict=True):
        if rule is not None:
            described[key] = _rule_described(rule, with_missing=False)
    described["properties"] = {rule.name: _rule_described(rule) for rule in properties}
    if copy is not None:
        described["copy"] = _copy_described(copy)
    return described


def _rule_described(rule: Rule, *, with_missing: bool = True) -> dict[str, object]:
    shown: dict[str, object] = {"path": rule.path} if rule.path is not None else {}
    if rule.constant is not None:
        shown["value"] = rule.constant
    conversion = rule.conversion
    shown["type"] = conversion.kind.value
    if conversion.kind is Kind.ENUM:
        shown.update(values=dict(conversion.values), default=conversion.default)
    if conversion.kind in (Kind.DATETIME, Kind.DATE):
        shown.update(unit=conversion.unit.value, timezone=conversion.zone)
        shown["format"] = conversion.output.value
    if with_missing:
        shown["on_missing"] = rule.on_missing.value
    return shown


def _copy_described(copy: CopyRule) -> dict[str, object]:
    include = sorted(copy.include) if copy.include is not None else None
    return {"from": copy.path, "include": include, "exclude": sorted(copy.exclude),
            "on_missing": copy.on_missing.value}  # fmt: skip
