"""Helpers for the emulator tests: request builders, and HubSpot's own schemas as a checker.

`SpecChecker` loads HubSpot's published OpenAPI specs (tests/data/hubspot-openapi, copied
unchanged) and validates bodies against their `components.schemas`, resolving `$ref`s.
`Upserter.post` checks every request it sends and every answer it gets against them, so each
test that talks to the emulator also checks its fidelity.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from devstack.emulator import DEFAULT_TOKEN

SPEC_DIR = Path(__file__).resolve().parents[1] / "data" / "hubspot-openapi"
SPEC_FILES = ("commerce-subscriptions-v3.json", "commerce-subscriptions-2026-03.json")
V3_PATH = "/crm/v3/objects/subscriptions/batch/upsert"
DATED_PATH = "/crm/objects/2026-03/subscriptions/batch/upsert"
ID_PROPERTY = "external_subscription_id"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}

RESPONSE_SCHEMAS = {
    200: "BatchResponseSimplePublicUpsertObject",
    207: "BatchResponseSimplePublicUpsertObjectWithErrors",
}


class SpecChecker:
    """Validates JSON against the schemas of both of HubSpot's subscription specs."""

    def __init__(self) -> None:
        self._registries = [_registry(name) for name in SPEC_FILES]

    def errors(self, schema_name: str, instance: Any, *, drop_required: str = "") -> list[str]:
        """Every violation of `schema_name` in either spec (empty when valid)."""
        found: list[str] = []
        for uri, registry in self._registries:
            schema = registry.contents(uri)["components"]["schemas"][schema_name]
            if drop_required:
                schema = {
                    **schema,
                    "required": [r for r in schema["required"] if r != drop_required],
                }
            schema = {**schema, "components": registry.contents(uri)["components"]}
            validator = OAS30Validator(
                schema, registry=registry, format_checker=oas30_format_checker
            )
            found += [f"{uri}: {e.json_path}: {e.message}" for e in validator.iter_errors(instance)]
        return found

    def check(self, schema_name: str, instance: Any, *, drop_required: str = "") -> None:
        problems = self.errors(schema_name, instance, drop_required=drop_required)
        assert not problems, f"{schema_name} violated:\n" + "\n".join(problems)

    def check_response(self, response: httpx.Response) -> None:
        """200/207 against their batch schemas; errors against `Error`."""
        body = response.json()
        if response.status_code in RESPONSE_SCHEMAS:
            self.check(RESPONSE_SCHEMAS[response.status_code], body)
        elif response.status_code == 429 and "policyName" in body:
            # HubSpot's documented 429 body has no `category`, though its `Error` schema
            # requires one; everything else about it must still match.
            self.check("Error", body, drop_required="category")
        else:
            self.check("Error", body)


def _registry(file_name: str) -> tuple[str, Registry]:
    contents = json.loads((SPEC_DIR / file_name).read_text(encoding="utf-8"))
    uri = f"urn:hubspot-spec:{file_name}"
    resource = Resource.from_contents(contents, default_specification=DRAFT4)
    return uri, Registry().with_resource(uri, resource)


@cache
def spec_checker() -> SpecChecker:
    return SpecChecker()


def an_input(
    id_value: str, trace: str | None = "auto", id_property: str = ID_PROPERTY, **props: Any
) -> dict[str, Any]:
    """One upsert input; `hs_name` defaults so it can create; `trace=None` omits the trace id."""
    item: dict[str, Any] = {
        "id": id_value,
        "idProperty": id_property,
        "properties": {"hs_name": f"Plan {id_value}", **props},
    }
    if trace is not None:
        item["objectWriteTraceId"] = f"trace-{id_value}" if trace == "auto" else trace
    return item


def batch(*inputs: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": list(inputs)}


class Upserter:
    """Posts upserts to one emulator, checking requests and answers against HubSpot's spec."""

    def __init__(self, base_url: str, token: str | None = DEFAULT_TOKEN) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.token = token

    def post(
        self,
        body: Any,
        *,
        path: str = V3_PATH,
        token: str | None = "default",
        check_request: bool = True,
    ) -> httpx.Response:
        if check_request:
            spec_checker().check("BatchInputSimplePublicObjectBatchInputUpsert", body)
        response = self.post_raw(json.dumps(body).encode(), path=path, token=token)
        spec_checker().check_response(response)
        return response

    def post_raw(
        self, raw: bytes, *, path: str = V3_PATH, token: str | None = "default"
    ) -> httpx.Response:
        use = self.token if token == "default" else token
        headers = {"Content-Type": "application/json"}
        if use is not None:
            headers["Authorization"] = f"Bearer {use}"
        return self.http.post(path, content=raw, headers=headers)

    def close(self) -> None:
        self.http.close()


def post_json(
    upserter: Upserter, path: str, body: Any, token: str | None = "default"
) -> httpx.Response:
    """POST a JSON body to any HubSpot path of the emulator (no spec check)."""
    return upserter.post_raw(json.dumps(body).encode(), path=path, token=token)
