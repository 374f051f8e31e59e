"""An event mapping in its normalised form: what `check-config` prints of the loaded file.

Every entry with its path or converted constant, its type and every option that type takes
(defaults filled in), so an operator sees exactly what the service will do. Pure.
"""

from __future__ import annotations

from service.core.mapping.spec import AssociationRule, AssociationsFrom, CopyRule, Kind, Rule
from service.core.model import DEFAULT_ASSOCIATION_CATEGORY


def describe(
    rules: tuple[Rule | None, ...],
    properties: tuple[Rule, ...],
    copy: CopyRule | None,
    associations: tuple[AssociationRule, ...] = (),
    associations_from: AssociationsFrom | None = None,
) -> dict[str, object]:
    """The mapping as check-config prints it: every entry with its defaults filled in."""
    described: dict[str, object] = {}
    for key, rule in zip(("id", "idProperty", "objectWriteTraceId"), rules, strict=True):
        if rule is not None:
            described[key] = _rule_described(rule, with_missing=False)
    described["properties"] = {rule.name: _rule_described(rule) for rule in properties}
    if copy is not None:
        described["copy"] = _copy_described(copy)
    if associations:
        described["associations"] = [_association_described(rule) for rule in associations]
    elif associations_from is not None:
        described["associations"] = {"from": associations_from.path}
    return described


def _association_described(rule: AssociationRule) -> dict[str, object]:
    value = _rule_described(rule.value)
    del value["type"]  # always text
    shown: dict[str, object] = {"to": rule.to_type, "idProperty": rule.id_property, "id": value}
    if rule.type_id is not None:
        shown.update(typeId=rule.type_id, category=rule.category or DEFAULT_ASSOCIATION_CATEGORY)
    return shown


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
