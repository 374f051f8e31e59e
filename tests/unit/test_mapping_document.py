"""Reading a mapping file's content (service/core/mapping/document.py): every problem it
reports at start-up, one line each naming the entry, and the normalised form check-config
prints."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from service.core.mapping.document import CONTRACT_DOCUMENT, MappingSpecError, read_mapping
from service.core.mapping.spec import Kind, Missing, TimeFormat, Unit


def problems(text: str) -> list[str]:
    with pytest.raises(MappingSpecError) as caught:
        read_mapping(yaml.safe_load(text))
    return caught.value.problems


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


GOOD = """
id: subscription_id
idProperty: {value: external_subscription_id}
objectWriteTraceId: event_id
properties:
  hs_name: plan.name
  hs_status:
    path: status
    type: enum
    values: {ACTIVE: active, "ON": active}
    default: other
  hs_amount: {path: amount, type: number}
  period_end: {path: period.end, type: datetime, unit: s, timezone: Europe/Paris}
  start_day: {path: period.start, type: date, format: epoch_ms}
  auto_renew: {path: renew, type: boolean, on_missing: clear}
  source: {value: billing}
  seats: {value: 3, type: number}
copy: {from: metadata, include: [region, tier], exclude: [tier]}
"""


def test_a_good_mapping_reads_into_rules() -> None:
    mapping = read_mapping(yaml.safe_load(GOOD))
    assert mapping.id.path == "subscription_id"
    assert mapping.id.on_missing is Missing.FAIL
    assert mapping.id_property is not None and mapping.id_property.constant == (
        "external_subscription_id"
    )
    rules = {rule.name: rule for rule in mapping.properties}
    assert list(rules) == [
        "hs_name", "hs_status", "hs_amount", "period_end", "start_day", "auto_renew", "source",
        "seats",
    ]  # fmt: skip
    assert rules["hs_status"].conversion.values == {"ACTIVE": "active", "ON": "active"}
    assert rules["hs_status"].conversion.default == "other"
    assert rules["period_end"].conversion.unit is Unit.SECONDS
    assert rules["period_end"].conversion.zone == "Europe/Paris"
    assert rules["start_day"].conversion.output is TimeFormat.EPOCH_MS
    assert rules["auto_renew"].on_missing is Missing.CLEAR
    assert rules["seats"].constant == "3"  # a constant is converted once, at start-up
    assert mapping.copy is not None and mapping.copy.include == frozenset({"region", "tier"})
    assert "hs_name" in mapping.copy.skip and "tier" in mapping.copy.skip


def test_the_normalised_form_shows_every_option_with_its_default() -> None:
    described: Any = read_mapping(yaml.safe_load(GOOD)).described
    assert described["id"] == {"path": "subscription_id", "type": "string"}
    assert described["idProperty"] == {"value": "external_subscription_id", "type": "string"}
    properties = described["properties"]
    assert properties["hs_name"] == {"path": "plan.name", "type": "string", "on_missing": "omit"}
    assert properties["period_end"] == {
        "path": "period.end", "type": "datetime", "unit": "s", "timezone": "Europe/Paris",
        "format": "iso", "on_missing": "omit",
    }  # fmt: skip
    assert properties["hs_status"]["values"] == {"ACTIVE": "active", "ON": "active"}
    assert described["copy"] == {
        "from": "metadata", "include": ["region", "tier"], "exclude": ["tier"],
        "on_missing": "omit",
    }  # fmt: skip


def test_the_contract_document_maps_the_contract_event() -> None:
    mapping = read_mapping(CONTRACT_DOCUMENT)
    assert mapping.id.path == "id"
    assert mapping.copy is not None and mapping.copy.path == "properties"
    assert mapping.copy.on_missing is Missing.CLEAR  # the contract: null clears


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, 2]", "the file holds a list, not a mapping of entries"),
        ("properties: {a: b}", "id: is required"),
        ("id: null\nproperties: {a: b}", "id: is required"),
        ("id: x", "neither `properties` nor `copy`: no property would be sent"),
        ("id: x\nproperties: {a: b}\nextras: 1", "extras: unknown key (expected one of: id,"),
        ("id: {path: x, type: number}\nproperties: {a: b}", "id.type: unknown key"),
        ("id: 5\nproperties: {a: b}", "id: is a number; give a path"),
        ("id: x\nproperties: [a, b]", "properties: is a list, not a mapping of property names"),
        ("id: x\nproperties: {' a': b}", "properties. a: a property name must be text"),
        ("id: x\nproperties: {a: {type: number}}", "properties.a: give exactly one of `path`"),
        ("id: x\nproperties: {a: {path: b, value: c}}", "properties.a: give exactly one of"),
        ("id: x\nproperties: {a: {path: 'b['}}",
         "properties.a: `path` 'b[' is not a JMESPath expression: Invalid jmespath expression "
         "(at character 2)"),
        ("id: x\nproperties: {a: {path: 'b..c'}}", "Expecting: ["),
        ("id: x\nproperties: {a: {path: '`b'}}", "Unclosed ` delimiter (at character 0)"),
        ("id: x\nproperties: {a: {path: ''}}", "properties.a: `path` is text, not a JMESPath"),
        ("id: x\nproperties: {a: {path: b, type: money}}",
         "properties.a: `type` 'money' is not one of string, number, boolean, datetime, date, "
         "enum"),
        ("id: x\nproperties: {a: {path: b, on_missing: maybe}}",
         "properties.a: `on_missing` 'maybe' is not one of omit, clear, fail"),
        ("id: x\nproperties: {a: {path: b, type: datetime, unit: h}}",
         "properties.a: `unit` 'h' is not one of s, ms, us"),
        ("id: x\nproperties: {a: {path: b, type: date, format: rfc}}",
         "properties.a: `format` 'rfc' is not one of iso, epoch_ms"),
        ("id: x\nproperties: {a: {path: b, type: datetime, timezone: Mars/Olympus}}",
         "properties.a: `timezone` 'Mars/Olympus' is not an IANA time zone"),
        ("id: x\nproperties: {a: {path: b, unit: s}}",
         "properties.a: `unit` applies to type datetime or date only"),
        ("id: x\nproperties: {a: {path: b, values: {X: y}}}",
         "properties.a: `values` applies to type enum only"),
        ("id: x\nproperties: {a: {path: b, type: enum}}",
         "properties.a: type enum needs `values`"),
        ("id: x\nproperties: {a: {path: b, type: enum, values: {ON: active}}}",
         "properties.a: the symbol True is a boolean (quote it: YAML reads yes/no/on/off"),
        ("id: x\nproperties: {a: {path: b, type: enum, values: {X: [1]}}}",
         "properties.a: the value [1] is a list, not text"),
        ("id: x\nproperties: {a: {path: b, type: enum, values: {X: y}, default: {}}}",
         "properties.a: the `default` {} is a mapping, not text"),
        ("id: x\nproperties: {a: {value: twelve, type: number}}",
         "properties.a: `value` does not convert to number: 'twelve' is not a number"),
        ("id: x\nproperties: {a: {value: null}}", "properties.a: `value` is empty; a constant"),
        ("id: x\nproperties: {a: {value: [1]}}", "properties.a: `value` is a list; a constant"),
        ("id: x\ncopy: 5", "copy: is a number; give `from:`"),
        ("id: x\ncopy: {from: 'a['}", "copy: `from` 'a[' is not a JMESPath expression"),
        ("id: x\ncopy: {from: a, include: b}", "copy.include: is text; give a list of field names"),
        ("id: x\ncopy: {from: a, exclude: [1]}", "copy.exclude: is a list; give a list of field"),
        ("id: x\ncopy: {from: a, only: [b]}", "copy.only: unknown key (expected one of: from,"),
        ("id: x\ncopy: {from: a, on_missing: never}", "copy: `on_missing` 'never' is not one of"),
        ("id: x\ncopy: a\nassociations: 5",
         "associations: is a number; give a list of at most 100 associations"),
        ("id: x\ncopy: a\nassociations: {from: 'a['}",
         "associations: `from` 'a[' is not a JMESPath expression"),
        ("id: x\ncopy: a\nassociations: {from: a, path: b}", "associations.path: unknown key"),
        ("id: x\ncopy: a\nassociations: [contacts]", "associations[0]: is text; give `to`"),
        ("id: x\ncopy: a\nassociations: [{to: 'con tacts', idProperty: email, id: e}]",
         "associations[0]: `to` is 'con tacts': name an object type"),
        ("id: x\ncopy: a\nassociations: [{to: contacts, id: e}]",
         "associations[0]: `idProperty` must name the target's unique property"),
        ("id: x\ncopy: a\nassociations: [{to: contacts, idProperty: email}]",
         "associations[0].id: is required"),
        ("id: x\ncopy: a\nassociations: [{to: contacts, idProperty: email, id: e, typeId: x}]",
         "associations[0]: `typeId` is text, not an integer"),
        ("id: x\ncopy: a\nassociations: [{to: deals, idProperty: d, id: e, category: X}]",
         "associations[0]: `category` must be text, and goes with a `typeId`"),
        ("id: x\ncopy: a\nassociations: [{to: d, idProperty: d, id: {path: e, on_missing: clear}}]",
         "associations[0].id: `on_missing` is omit (no association) or fail, not clear"),
        ("id: x\ncopy: a\nassociations: [{to: d, idProperty: d, id: {path: e, type: number}}]",
         "associations[0].id.type: unknown key (expected one of: path, value, on_missing)"),
        ("id: x\ncopy: a\nassociations: [{to: deals, idProperty: d, id: e, label: x}]",
         "associations[0].label: unknown key (expected one of: to, idProperty, id, typeId,"),
    ],
)  # fmt: skip
def test_each_problem_is_one_line_naming_its_entry(text: str, problem: str) -> None:
    found = only_problem(text)
    assert problem in found
    assert "\n" not in found


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        """
        id: {path: 'a['}
        properties:
          b: {path: c, type: money}
          d: {path: e, type: enum}
          f: {value: x, type: boolean}
        copy: {from: g, bogus: 1}
        """
    )
    assert [line.split(":")[0] for line in found] == [
        "id", "properties.b", "properties.d", "properties.f", "copy.bogus",
    ]  # fmt: skip


def test_associations_read_into_rules_and_show_in_the_normalised_form() -> None:
    mapping = read_mapping(
        yaml.safe_load(
            """
            id: subscription_id
            copy: properties
            associations:
              - {to: contacts, idProperty: email, id: customer.email}
              - {to: companies, idProperty: domain, id: {path: customer.domain, on_missing: fail}}
              - to: deals
                idProperty: deal_ref
                id: {value: D-1}
                typeId: 7
                category: USER_DEFINED
            """
        )
    )
    contact, company, deal = mapping.associations
    assert (contact.to_type, contact.id_property, contact.value.path) == (
        "contacts", "email", "customer.email",
    )  # fmt: skip
    assert company.value.on_missing is Missing.FAIL
    assert (deal.value.constant, deal.type_id, deal.category) == ("D-1", 7, "USER_DEFINED")
    assert mapping.described["associations"] == [
        {"to": "contacts", "idProperty": "email",
         "id": {"path": "customer.email", "on_missing": "omit"}},
        {"to": "companies", "idProperty": "domain",
         "id": {"path": "customer.domain", "on_missing": "fail"}},
        {"to": "deals", "idProperty": "deal_ref", "id": {"value": "D-1", "on_missing": "omit"},
         "typeId": 7, "category": "USER_DEFINED"},
    ]  # fmt: skip


def test_associations_from_a_list_in_the_event() -> None:
    mapping = read_mapping({"id": "id", "copy": "properties", "associations": {"from": "links"}})
    assert mapping.associations_from is not None and mapping.associations_from.path == "links"
    assert mapping.described["associations"] == {"from": "links"}
    contract = read_mapping(CONTRACT_DOCUMENT)
    assert contract.associations_from is not None
    assert contract.associations_from.path == "associations"


def test_the_id_entries_take_only_a_path_or_a_value() -> None:
    found = problems("id: x\nidProperty: {path: p, type: enum}\nproperties: {a: b}")
    assert found == [
        "idProperty.type: unknown key (expected one of: path, value)",
    ]


def test_a_json_document_reads_the_same_as_yaml() -> None:
    as_json = read_mapping({"id": "x", "properties": {"a": {"path": "b", "type": "number"}}})
    as_yaml = read_mapping(yaml.safe_load("id: x\nproperties: {a: {path: b, type: number}}"))
    assert as_json.described == as_yaml.described
    assert as_json.properties[0].conversion.kind is Kind.NUMBER
