"""One decoded event through a mapping (service/core/mapping/apply.py), and the reader that
decodes first (MappedReader, JsonDecoder): the Event it builds, or the Rejection and why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml

from service.core.codec import ValidationLimits
from service.core.errors import SchemaRegistryUnavailableError, UnreadableEventError
from service.core.mapping.apply import MappedReader, map_event
from service.core.mapping.document import CONTRACT_DOCUMENT, read_mapping
from service.core.mapping.json_input import JsonDecoder
from service.core.mapping.spec import EventMapping
from service.core.model import AssociationRef, Event, RawMessage, Rejection

LIMITS = ValidationLimits(default_id_property="external_subscription_id")
RAW = RawMessage("billing", 2, 41, b"sub-1", b"...")

BILLING = read_mapping(
    yaml.safe_load(
        """
        id: subscription.id
        objectWriteTraceId: event_id
        properties:
          hs_name: plan.name
          hs_status: {path: status, type: enum, values: {ACTIVE: active, PAST_DUE: past_due}}
          hs_amount: {path: amount, type: number}
          hs_next_payment_due_date: {path: period.end, type: date}
          seats: {path: "sum(items[].quantity)", type: number}
          items_total: {path: "sum(items[].amount)", type: number}
          first_price: "items[0].price_code"
          discount: {path: discount, type: number, on_missing: clear}
          source_system: {value: billing}
        """
    )
)


def billing_event(**changes: object) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "evt-77",
        "subscription": {"id": "sub-1"},
        "plan": {"name": "Gold"},
        "status": "ACTIVE",
        "amount": Decimal("1234567890123456789.99"),
        "period": {"end": datetime(2024, 3, 31, 23, 59, tzinfo=UTC)},
        "items": [
            {"quantity": 2, "amount": Decimal("0.10"), "price_code": "gold-m"},
            {"quantity": 3, "amount": Decimal("0.20"), "price_code": "seat-m"},
        ],
        "discount": None,
    }
    event.update(changes)
    return event


def mapped(document: object, mapping: EventMapping = BILLING) -> Event | Rejection:
    return map_event(RAW, document, mapping, LIMITS)


def rejected(document: object, mapping: EventMapping = BILLING) -> Rejection:
    result = mapped(document, mapping)
    assert isinstance(result, Rejection), result
    return result


def test_an_event_maps_to_an_input() -> None:
    event = mapped(billing_event())
    assert isinstance(event, Event)
    assert event.id == "sub-1"
    assert event.id_property == "external_subscription_id"  # HUBSPOT_ID_PROPERTY
    assert event.trace_id == "evt-77"
    assert event.raw is RAW
    assert event.properties == {
        "hs_name": "Gold",
        "hs_status": "active",
        "hs_amount": "1234567890123456789.99",
        "hs_next_payment_due_date": "2024-03-31",
        "seats": "5",
        "items_total": "0.30",  # decimals summed exactly by JMESPath, not 0.30000000000000004
        "first_price": "gold-m",
        "discount": "",  # null, on_missing: clear
        "source_system": "billing",
    }


def test_without_a_trace_id_entry_the_trace_id_is_derived() -> None:
    mapping = read_mapping({"id": "id", "properties": {"a": "a"}})
    event = mapped({"id": "x", "a": "b"}, mapping)
    assert isinstance(event, Event) and event.trace_id == "billing-2-41"


def test_a_missing_optional_property_is_left_out() -> None:
    event = mapped(billing_event(plan={}))
    assert isinstance(event, Event)
    assert "hs_name" not in event.properties


def test_a_required_property_that_is_missing_rejects_the_event_naming_the_entry() -> None:
    required = {"path": "plan.name", "on_missing": "fail"}
    mapping = read_mapping({"id": "id", "properties": {"hs_name": required}})
    rejection = rejected({"id": "sub-9", "plan": {"name": None}}, mapping)
    assert rejection.category == "MAPPING_ERROR"
    assert rejection.message == (
        "mapping entry properties.hs_name (path `plan.name`): is missing or null"
    )
    assert (rejection.id, rejection.id_property) == ("sub-9", "external_subscription_id")
    assert rejection.trace_id == "billing-2-41"


def test_a_value_that_does_not_convert_rejects_the_event_with_the_id() -> None:
    rejection = rejected(billing_event(status="CANCELED"))
    assert rejection.category == "MAPPING_ERROR"
    assert rejection.message == (
        "mapping entry properties.hs_status (path `status`): 'CANCELED' is not in the value "
        "map and there is no default (type enum)"
    )
    assert (rejection.id, rejection.trace_id) == ("sub-1", "evt-77")


def test_an_event_without_its_id_is_rejected_without_one() -> None:
    rejection = rejected(billing_event(subscription={"id": None}))
    assert rejection.category == "MAPPING_ERROR"
    assert rejection.message == "mapping entry id (path `subscription.id`): is missing or null"
    assert rejection.id is None and rejection.trace_id == "billing-2-41"


@pytest.mark.parametrize(
    ("subscription", "problem"),
    [({"id": "  "}, "is empty"), ({"id": "x" * 1025}, "is longer than 1024 characters"),
     ({"id": {"nested": 1}}, "is an object")],
)  # fmt: skip
def test_an_unusable_id_is_a_mapping_error(subscription: object, problem: str) -> None:
    rejection = rejected(billing_event(subscription=subscription))
    assert rejection.message.startswith("mapping entry id (path `subscription.id`): ")
    assert problem in rejection.message


def test_a_numeric_id_is_sent_as_text() -> None:
    event = mapped(billing_event(subscription={"id": 12345678901234567890}))
    assert isinstance(event, Event) and event.id == "12345678901234567890"


def test_a_path_that_fails_on_the_event_is_a_mapping_error() -> None:
    rejection = rejected(billing_event(items=[{"quantity": "two"}]))
    assert rejection.category == "MAPPING_ERROR"
    assert rejection.message.startswith(
        "mapping entry properties.seats (path `sum(items[].quantity)`): "
        "`sum(items[].quantity)` failed: "
    )


def test_idproperty_and_trace_id_fall_back_to_their_defaults_when_empty() -> None:
    mapping = read_mapping(
        {"id": "id", "idProperty": "prop", "objectWriteTraceId": "trace", "properties": {"a": "a"}}
    )
    event = mapped({"id": "x", "a": "1", "prop": "", "trace": None}, mapping)
    assert isinstance(event, Event)
    assert (event.id_property, event.trace_id) == ("external_subscription_id", "billing-2-41")
    event = mapped({"id": "x", "a": "1", "prop": "custom_id", "trace": "t-1"}, mapping)
    assert isinstance(event, Event) and (event.id_property, event.trace_id) == ("custom_id", "t-1")


COPY = read_mapping(
    yaml.safe_load(
        """
        id: id
        properties:
          hs_name: {path: title, on_missing: clear}
          region: region_override
        copy: {from: attributes, exclude: [internal]}
        """
    )
)


def test_copy_takes_the_fields_of_an_object_except_the_excluded_ones() -> None:
    attributes = {"region": "EU", "seats": 4, "vip": True, "internal": "x", "hs_name": "ignored"}
    event = mapped({"id": "a", "title": "Gold", "attributes": attributes}, COPY)
    assert isinstance(event, Event)
    # a named entry wins over a copied field of the same name, even when it is missing
    assert event.properties == {"seats": "4", "vip": "true", "hs_name": "Gold"}
    event = mapped({"id": "a", "attributes": attributes}, COPY)
    assert isinstance(event, Event) and event.properties["hs_name"] == ""


def test_copy_with_include_takes_only_those() -> None:
    mapping = read_mapping({"id": "id", "copy": {"from": "@", "include": ["a", "c"]}})
    event = mapped({"id": "x", "a": 1, "b": 2, "c": None}, mapping)
    assert isinstance(event, Event) and event.properties == {"a": "1"}  # c is null: omitted


def test_copy_of_a_nested_field_is_a_mapping_error() -> None:
    rejection = rejected({"id": "a", "attributes": {"address": {"city": "Lyon"}}}, COPY)
    assert rejection.category == "MAPPING_ERROR"
    assert rejection.message.startswith(
        "mapping entry copy (from `attributes`): field `address`: the value is an object"
    )
    assert rejection.id == "a"


def test_copy_from_something_that_is_not_an_object_is_a_mapping_error() -> None:
    rejection = rejected({"id": "a", "attributes": [1, 2]}, COPY)
    assert rejection.message == "mapping entry copy (from `attributes`): [1, 2] is not an object"


def test_the_contract_mapping_reads_the_contract_event() -> None:
    mapping = read_mapping(CONTRACT_DOCUMENT)
    event = mapped(
        {"id": "sub-1", "idProperty": "my_id", "properties": {"hs_name": "Gold", "gone": None}},
        mapping,
    )
    assert isinstance(event, Event)
    assert (event.id, event.id_property) == ("sub-1", "my_id")
    assert event.properties == {"hs_name": "Gold", "gone": ""}  # null clears, as in JSON


LINKED = read_mapping(
    yaml.safe_load(
        """
        id: subscription.id
        copy: {from: props}
        associations:
          - {to: contacts, idProperty: email, id: customer.email}
          - {to: companies, idProperty: domain, id: {path: customer.domain, on_missing: fail}}
          - {to: deals, idProperty: deal_ref, id: {value: D-1}, typeId: 7, category: USER_DEFINED}
        """
    )
)


def test_an_event_names_the_associations_of_its_mapping() -> None:
    event = mapped(
        {"subscription": {"id": "s"}, "customer": {"email": "a@x", "domain": "x.com"}}, LINKED
    )
    assert isinstance(event, Event)
    assert event.associations == (
        AssociationRef("contacts", "email", "a@x"),
        AssociationRef("companies", "domain", "x.com"),
        AssociationRef("deals", "deal_ref", "D-1", 7, "USER_DEFINED"),
    )


def test_an_association_whose_value_is_missing_is_left_out_or_fails_the_event() -> None:
    event = mapped({"subscription": {"id": "s"}, "customer": {"domain": "x.com"}}, LINKED)
    assert isinstance(event, Event)
    assert [ref.to_type for ref in event.associations] == ["companies", "deals"]
    rejection = rejected({"subscription": {"id": "s"}, "customer": {"email": "a@x"}}, LINKED)
    assert rejection.category == "MAPPING_ERROR" and rejection.id == "s"
    assert rejection.message == (
        "mapping entry associations[1].id (path `customer.domain`): is missing or null"
    )


def test_associations_from_a_list_in_the_event_read_as_the_contracts() -> None:
    mapping = read_mapping({"id": "id", "copy": "props", "associations": {"from": "links"}})
    link = {"to": "contacts", "idProperty": "email", "id": "a@x"}
    event = mapped({"id": "s", "links": [link, link]}, mapping)
    assert isinstance(event, Event)
    assert event.associations == (AssociationRef("contacts", "email", "a@x"),)
    assert isinstance(none := mapped({"id": "s"}, mapping), Event) and not none.associations
    bad = rejected({"id": "s", "links": [{"to": "contacts", "id": "a@x"}]}, mapping)
    assert bad.category == "INVALID_ASSOCIATIONS"
    assert bad.message == (
        "mapping entry associations (from `links`): associations[0].idProperty must be a string"
    )


def test_the_contract_mapping_reads_the_contract_events_associations() -> None:
    link = {"to": "companies", "idProperty": "domain", "id": "x.com", "typeId": 3}
    event = mapped({"id": "s", "properties": {}, "associations": [link]},
                   read_mapping(CONTRACT_DOCUMENT))  # fmt: skip
    assert isinstance(event, Event)
    assert event.associations == (AssociationRef("companies", "domain", "x.com", 3, None),)


def test_limits_apply_to_mapped_events() -> None:
    mapping = read_mapping({"id": "id", "copy": "properties"})
    limits = ValidationLimits("p", max_properties=2, max_value_length=5)
    too_many = map_event(RAW, {"id": "x", "properties": {"a": 1, "b": 2, "c": 3}}, mapping, limits)
    assert isinstance(too_many, Rejection) and too_many.category == "TOO_MANY_PROPERTIES"
    too_long = map_event(RAW, {"id": "x", "properties": {"a": "123456"}}, mapping, limits)
    assert isinstance(too_long, Rejection) and too_long.category == "VALUE_TOO_LONG"
    assert too_long.message == "property `a` is 6 characters, over 5"


# -- MappedReader: decoding first --------------------------------------------------------------


class ScriptedDecoder:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    def decode(self, raw: RawMessage) -> object:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_the_reader_maps_what_the_decoder_reads() -> None:
    reader = MappedReader(ScriptedDecoder(billing_event()), BILLING, LIMITS)
    event = reader.read(RAW)
    assert isinstance(event, Event) and event.id == "sub-1"


def test_an_unreadable_record_is_rejected_with_the_decoders_category() -> None:
    reader = MappedReader(
        ScriptedDecoder(UnreadableEventError("SCHEMA_NOT_FOUND", "schema 99 does not exist")),
        BILLING,
        LIMITS,
    )
    rejection = reader.read(RAW)
    assert isinstance(rejection, Rejection)
    assert (rejection.category, rejection.message) == (
        "SCHEMA_NOT_FOUND",
        "schema 99 does not exist",
    )
    assert rejection.id is None and rejection.trace_id == "billing-2-41"


def test_an_unavailable_registry_passes_through_the_reader() -> None:
    reader = MappedReader(
        ScriptedDecoder(SchemaRegistryUnavailableError("connection refused")), BILLING, LIMITS
    )
    with pytest.raises(SchemaRegistryUnavailableError):
        reader.read(RAW)


# -- plain JSON with a mapping ---------------------------------------------------------------


def raw_json(value: bytes | None) -> RawMessage:
    return RAW._replace(value=value)


def test_plain_json_keeps_decimals_exact() -> None:
    decoded = JsonDecoder().decode(
        raw_json(b'{"amount": 0.30000000000000000001, "n": 12345678901234567890123}')
    )
    assert decoded == {"amount": Decimal("0.30000000000000000001"), "n": 12345678901234567890123}


@pytest.mark.parametrize(
    ("value", "category"),
    [(None, "EMPTY_VALUE"), (b"\xff\xfe", "NOT_UTF8"), (b'{"a": ', "NOT_JSON"),
     (b'{"a": NaN}', "NOT_JSON")],
)  # fmt: skip
def test_plain_json_that_cannot_be_read(value: bytes | None, category: str) -> None:
    with pytest.raises(UnreadableEventError) as caught:
        JsonDecoder().decode(raw_json(value))
    assert caught.value.category == category
