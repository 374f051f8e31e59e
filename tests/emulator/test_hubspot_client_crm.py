"""HubSpot's official Python client (`hubspot-api-client`) against the emulator's CRM object
and association endpoints: it builds the requests and parses the answers into its models.
Its client-side validation (off by default) is switched on, so an answer missing a field
HubSpot's spec requires fails the parse, as does a status the client does not expect."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.emulator import DEFAULT_TOKEN, RunningEmulator


def _client(emulator: RunningEmulator) -> Any:
    from hubspot import Client

    return Client.create(access_token=DEFAULT_TOKEN, host=emulator.url, client_side_validation=True)


def _read_by_email(emulator: RunningEmulator, emails: list[str]) -> Any:
    from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

    request = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=email) for email in emails],
        id_property="email",
        properties=["email", "firstname"],
        properties_with_history=[],
    )
    return _client(emulator).crm.contacts.batch_api.read(
        batch_read_input_simple_public_object_id=request
    )


def test_official_client_creates_contacts(emulator: RunningEmulator) -> None:
    from hubspot.crm.contacts import (
        BatchInputSimplePublicObjectBatchInputForCreate,
        BatchResponseSimplePublicObject,
        SimplePublicObjectBatchInputForCreate,
    )

    request = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": e}, associations=[])
            for e in ("a@x.io", "b@x.io")
        ]
    )
    response = _client(emulator).crm.contacts.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=request
    )

    assert isinstance(response, BatchResponseSimplePublicObject)
    assert sorted(r.properties["email"] for r in response.results) == ["a@x.io", "b@x.io"]
    assert set(emulator.control.store("contacts")) == {r.id for r in response.results}


def test_official_client_reads_contacts_by_email(emulator: RunningEmulator) -> None:
    from hubspot.crm.contacts import BatchResponseSimplePublicObject

    ids = emulator.control.seed("contacts", [{"email": "a@x.io", "firstname": "Ann"}])
    response = _read_by_email(emulator, ["a@x.io"])

    assert isinstance(response, BatchResponseSimplePublicObject)
    (result,) = response.results
    assert result.id == ids[0]
    assert result.properties["firstname"] == "Ann"
    assert result.archived is False


def test_official_client_parses_missing_contacts_as_a_207(emulator: RunningEmulator) -> None:
    from hubspot.crm.contacts import BatchResponseSimplePublicObjectWithErrors

    emulator.control.seed("contacts", [{"email": "a@x.io"}])
    response = _read_by_email(emulator, ["a@x.io", "gone@x.io"])

    assert isinstance(response, BatchResponseSimplePublicObjectWithErrors)
    assert response.num_errors == 1
    (error,) = response.errors
    assert (error.category, error.context) == ("OBJECT_NOT_FOUND", {"ids": ["gone@x.io"]})
    assert [r.properties["email"] for r in response.results] == ["a@x.io"]


def test_official_client_raises_on_an_oversized_read(emulator: RunningEmulator) -> None:
    from hubspot.crm.contacts.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        _read_by_email(emulator, [f"{n}@x.io" for n in range(101)])

    assert refused.value.status == 400
    assert "100" in refused.value.body


# --- v4 associations ------------------------------------------------------------------------


def _linked_records(emulator: RunningEmulator) -> tuple[str, str]:
    (subscription,) = emulator.control.seed(
        "subscriptions", [{"external_subscription_id": "s1", "hs_name": "Plan"}]
    )
    (contact,) = emulator.control.seed("contacts", [{"email": "a@x.io"}])
    return subscription, contact


def _associate_default(emulator: RunningEmulator, pairs: list[tuple[str, str]]) -> Any:
    from hubspot.crm.associations.v4 import (
        BatchInputPublicDefaultAssociationMultiPost,
        PublicDefaultAssociationMultiPost,
        PublicObjectId,
    )

    request = BatchInputPublicDefaultAssociationMultiPost(
        inputs=[
            PublicDefaultAssociationMultiPost(_from=PublicObjectId(id=f), to=PublicObjectId(id=t))
            for f, t in pairs
        ]
    )
    return _client(emulator).crm.associations.v4.batch_api.create_default(
        "subscriptions", "contacts", batch_input_public_default_association_multi_post=request
    )


def test_official_client_associates_by_default_type(emulator: RunningEmulator) -> None:
    from hubspot.crm.associations.v4 import BatchResponsePublicDefaultAssociation

    subscription, contact = _linked_records(emulator)
    response = _associate_default(emulator, [(subscription, contact), (subscription, "999")])

    assert isinstance(response, BatchResponsePublicDefaultAssociation)
    forward, inverse = response.results
    assert (forward._from.id, forward.to.id) == (subscription, contact)
    assert forward.association_spec.association_category == "HUBSPOT_DEFINED"
    assert inverse.to.id == subscription
    assert response.num_errors == 1
    assert response.errors[0].context["toObjectId"] == ["999"]


def test_official_client_creates_labelled_associations(emulator: RunningEmulator) -> None:
    from hubspot.crm.associations.v4 import (
        AssociationSpec,
        BatchInputPublicAssociationMultiPost,
        BatchResponseLabelsBetweenObjectPair,
        BatchResponseLabelsBetweenObjectPairWithErrors,
        PublicAssociationMultiPost,
        PublicObjectId,
    )

    subscription, contact = _linked_records(emulator)

    def create(type_id: int) -> Any:
        spec = AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)
        request = BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=subscription),
                    to=PublicObjectId(id=contact),
                    types=[spec],
                )
            ]
        )
        return _client(emulator).crm.associations.v4.batch_api.create(
            "subscriptions", "contacts", batch_input_public_association_multi_post=request
        )

    created, refused = create(90001), create(4242)

    assert isinstance(created, BatchResponseLabelsBetweenObjectPair)
    (pair,) = created.results
    assert (pair.from_object_id, pair.to_object_type_id, pair.labels) == (subscription, "0-1", [])
    assert isinstance(refused, BatchResponseLabelsBetweenObjectPairWithErrors)
    assert refused.errors[0].category == "VALIDATION_ERROR"


def test_official_client_reads_associations_back(emulator: RunningEmulator) -> None:
    from hubspot.crm.associations.v4 import (
        BatchInputPublicFetchAssociationsBatchRequest,
        BatchResponsePublicAssociationMultiWithLabelWithErrors,
        PublicFetchAssociationsBatchRequest,
    )

    subscription, contact = _linked_records(emulator)
    _associate_default(emulator, [(subscription, contact)])
    request = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[
            PublicFetchAssociationsBatchRequest(id=subscription),
            PublicFetchAssociationsBatchRequest(id="424242"),
        ]
    )
    response = _client(emulator).crm.associations.v4.batch_api.get_page(
        "subscriptions", "contacts", batch_input_public_fetch_associations_batch_request=request
    )

    assert isinstance(response, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    (found,) = response.results
    assert found._from.id == subscription
    assert [(t.to_object_id, t.association_types[0].type_id) for t in found.to] == [
        (contact, 90001)
    ]
    assert response.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
