"""Object types beyond subscriptions: contacts, companies, deals and custom ones, each with
its own schema, named in paths as HubSpot accepts them, upserted like subscriptions."""

from __future__ import annotations

import pytest

from devstack.emulator import ControlError, EmulatorConfig, RunningEmulator
from devstack.emulator.catalog import Catalog
from devstack.emulator.objectconfig import ObjectSchema
from tests.emulator.conftest import StartEmulator
from tests.emulator.support import Upserter

CONTACTS = "/crm/v3/objects/contacts/batch/upsert"


def _contact(email: str, trace: str | None = None, **props: str) -> dict[str, object]:
    item: dict[str, object] = {"id": email, "idProperty": "email", "properties": props}
    if trace is not None:
        item["objectWriteTraceId"] = trace
    return item


def test_contacts_are_upserted_by_email_with_their_own_schema(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    response = upserter.post({"inputs": [_contact("a@x.io", "t1", firstname="Ann")]}, path=CONTACTS)

    assert response.status_code == 200
    result = response.json()["results"][0]
    assert result["new"] is True
    assert result["properties"]["email"] == "a@x.io"
    assert emulator.control.store("contacts")["a@x.io"]["properties"]["firstname"] == "Ann"
    assert emulator.control.store() == {}  # subscriptions are another table


def test_a_subscription_property_is_unknown_to_contacts(upserter: Upserter) -> None:
    contact = upserter.post({"inputs": [_contact("a@x.io", "t1", hs_name="x")]}, path=CONTACTS)

    assert contact.status_code == 207
    assert contact.json()["errors"][0]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_a_non_unique_contact_property_cannot_identify_a_contact(upserter: Upserter) -> None:
    item = {"id": "Ann", "idProperty": "firstname", "properties": {}}
    response = upserter.post({"inputs": [item]}, path=CONTACTS)

    assert response.status_code == 400
    assert response.json()["message"] == (
        "Unable to perform update/upsert by non-unique 0-1 property firstname"
    )


@pytest.mark.parametrize("name", ["contacts", "contact", "0-1", "CONTACTS"])
def test_an_object_type_is_named_by_path_name_singular_or_type_id(
    emulator: RunningEmulator, upserter: Upserter, name: str
) -> None:
    path = f"/crm/v3/objects/{name}/batch/upsert"
    response = upserter.post({"inputs": [_contact("a@x.io")]}, path=path)

    assert response.status_code == 200
    assert set(emulator.control.store("contacts")) == {"a@x.io"}
    assert emulator.control.requests()[-1]["objectType"] == "contacts"


def _two_unique_contacts(start_emulator: StartEmulator) -> Upserter:
    schemas = dict(EmulatorConfig().object_schemas)
    schemas["contacts"] = ObjectSchema(
        type_id="0-1", unique_properties=frozenset({"email", "external_customer_id"})
    )
    return start_emulator(object_schemas=schemas)[1]


def _by_customer(customer_id: str) -> dict[str, object]:
    return {"id": customer_id, "idProperty": "external_customer_id", "properties": {}}


def test_a_record_is_found_by_each_of_its_unique_properties(start_emulator: StartEmulator) -> None:
    upserter = _two_unique_contacts(start_emulator)
    first = upserter.post(
        {"inputs": [_contact("a@x.io", external_customer_id="c-1")]}, path=CONTACTS
    ).json()["results"][0]
    second = upserter.post({"inputs": [_by_customer("c-1")]}, path=CONTACTS).json()["results"][0]

    assert second["id"] == first["id"]
    assert second["new"] is False
    assert second["properties"]["email"] == "a@x.io"


def test_a_changed_unique_value_moves_the_index(start_emulator: StartEmulator) -> None:
    upserter = _two_unique_contacts(start_emulator)
    contact = _contact("a@x.io", external_customer_id="c-1")
    first = upserter.post({"inputs": [contact]}, path=CONTACTS).json()["results"][0]
    upserter.post({"inputs": [_contact("a@x.io", external_customer_id="c-2")]}, path=CONTACTS)
    by_new = upserter.post({"inputs": [_by_customer("c-2")]}, path=CONTACTS).json()["results"]
    by_old = upserter.post({"inputs": [_by_customer("c-1")]}, path=CONTACTS).json()["results"]

    assert (by_new[0]["id"], by_new[0]["new"]) == (first["id"], False)
    assert by_old[0]["new"] is True  # c-1 no longer names the first contact


def test_custom_object_types_are_served_by_name_and_type_id(start_emulator: StartEmulator) -> None:
    schemas = {"p_licences": ObjectSchema(type_id="2-1234", unique_properties=frozenset({"key"}))}
    emulator, upserter = start_emulator(object_schemas=schemas)
    item = {"id": "k1", "idProperty": "key", "properties": {}}
    response = upserter.post({"inputs": [item]}, path="/crm/v3/objects/2-1234/batch/upsert")

    assert response.status_code == 200
    assert set(emulator.control.store("p_licences")) == {"k1"}


def test_a_type_listed_in_object_types_keeps_the_top_level_schema() -> None:
    catalog = Catalog(EmulatorConfig(object_types=frozenset({"subscriptions", "deals"})))

    assert catalog.types["deals"].schema.unique == {"external_subscription_id"}
    assert catalog.types["contacts"].schema.unique == {"email"}


def test_unknown_object_types_are_still_a_400(upserter: Upserter) -> None:
    response = upserter.post(
        {"inputs": [_contact("a@x.io")]}, path="/crm/v3/objects/widgets/batch/upsert"
    )

    assert response.status_code == 400
    assert response.json()["message"] == "Unable to infer object type from: widgets"


def test_every_request_log_entry_names_its_operation(
    emulator: RunningEmulator, upserter: Upserter
) -> None:
    upserter.post({"inputs": [_contact("a@x.io")]}, path=CONTACTS)

    assert [e["operation"] for e in emulator.control.requests()] == ["upsert"]
    assert emulator.control.stats()["byOperation"] == {"upsert": 1}


def test_object_schemas_are_patchable_and_checked(emulator: RunningEmulator) -> None:
    schemas = emulator.control.config()["object_schemas"]
    schemas["contacts"]["unique_properties"].append("external_customer_id")
    patched = emulator.control.configure(object_schemas=schemas)

    assert patched["object_schemas"]["contacts"]["unique_properties"] == [
        "email",
        "external_customer_id",
    ]
    with pytest.raises(ControlError, match="type_id"):
        emulator.control.configure(object_schemas={"contacts": {"unique_properties": []}})
