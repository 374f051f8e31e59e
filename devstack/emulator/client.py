"""A small typed httpx client for the control API (`/_emulator/...`).

Owns the Python side of the control API for tests, benchmarks and the demo: one method per
route, JSON decoded into the TypedDicts below. A 4xx from the control API raises
`ControlError` with the emulator's message. It never calls the HubSpot routes.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

import httpx


class StoredRecord(TypedDict):
    """`GET /_emulator/store` value: one record, keyed by its id value."""

    hubspotId: str
    idProperty: str
    properties: dict[str, str]
    createdAt: str
    updatedAt: str


class WriteEntry(TypedDict):
    """`GET /_emulator/history` item: one applied input."""

    traceId: str | None
    properties: dict[str, str]
    at: str
    requestSeq: int


class RequestEntry(TypedDict):
    """`GET /_emulator/requests` item: one request to a HubSpot endpoint (status None:
    dropped). `operation`: upsert, read, create, associate_default, associate,
    read_associations."""

    seq: int
    path: str
    operation: str
    objectType: str
    status: int | None
    inputs: int
    receivedAt: str
    answeredAt: str
    traceIds: list[str | None]
    fault: str | None
    applied: int


class AssociationEntry(TypedDict):
    """`GET /_emulator/associations` item: one link, one direction, one association type."""

    fromObjectType: str
    fromObjectId: str
    toObjectType: str
    toObjectId: str
    category: str
    typeId: int


class ControlError(RuntimeError):
    """The control API refused a call (bad patch, unknown fault...)."""


class ControlClient:
    """Talks to one emulator's control API."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def health(self) -> bool:
        return bool(self._get("/_emulator/health").get("status") == "ok")

    def store(self, object_type: str = "subscriptions") -> dict[str, StoredRecord]:
        data = self._get("/_emulator/store", objectType=object_type)
        return cast(dict[str, StoredRecord], data)

    def history(self, object_type: str = "subscriptions") -> dict[str, list[WriteEntry]]:
        data = self._get("/_emulator/history", objectType=object_type)
        return cast(dict[str, list[WriteEntry]], data)

    def seed(self, object_type: str, records: list[dict[str, str]]) -> list[str]:
        """Create records (e.g. contacts `{"email": ...}`) without a HubSpot request; returns
        their HubSpot ids. `store(object_type)` lists them keyed by HubSpot id."""
        body = {"records": records}
        return cast(list[str], self._post(f"/_emulator/objects/{object_type}", body)["ids"])

    def associations(
        self, from_type: str | None = None, to_type: str | None = None
    ) -> list[AssociationEntry]:
        """Stored links, both directions, one entry per association type (filters optional)."""
        params = {k: v for k, v in (("fromObjectType", from_type), ("toObjectType", to_type)) if v}
        return cast(list[AssociationEntry], self._get("/_emulator/associations", **params))

    def requests(self) -> list[RequestEntry]:
        return cast(list[RequestEntry], self._get("/_emulator/requests"))

    def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._get("/_emulator/stats"))

    def config(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._get("/_emulator/config"))

    def configure(self, **patch: Any) -> dict[str, Any]:
        """Patch config fields by name, e.g. `configure(latency_ms=50, tokens=["t"])`."""
        return cast(dict[str, Any], self._post("/_emulator/config", patch))

    def fault_next(
        self, fault: str, count: int = 1, when: str = "before", operation: str | None = None
    ) -> list[Any]:
        """The next `count` requests get `fault` ("503", "timeout", "drop"...); with
        `operation` ("upsert", "read", "associate_default"...), only requests of it."""
        body: dict[str, Any] = {"fault": fault, "count": count, "when": when}
        if operation is not None:
            body["operation"] = operation
        return cast(list[Any], self._post("/_emulator/faults/next", body)["pending"])

    def add_content_fault(
        self,
        prop: str,
        equals: str,
        status: int | str = 500,
        *,
        when: str = "before",
        object_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """From now on, any upsert with an input whose `prop` equals `equals` (its id counts as
        its idProperty's value) gets `status` (500..., "timeout" or "drop"); other upserts are
        answered normally. Returns every content rule now in force."""
        rule = {"property": prop, "equals": equals, "status": status, "when": when}
        if object_type is not None:
            rule["object_type"] = object_type
        rules = [*self.config()["content_faults"], rule]
        return cast(list[dict[str, Any]], self.configure(content_faults=rules)["content_faults"])

    def clear_content_faults(self) -> None:
        self.configure(content_faults=[])

    def outage(self, fault: str = "503") -> None:
        """A total outage: every HubSpot request gets `fault` ("503", "timeout", "drop"...),
        before authentication and rate limits, until `end_outage()`."""
        self.configure(outage=fault)

    def end_outage(self) -> None:
        self.configure(outage=None)

    def pending_faults(self) -> list[Any]:
        return cast(list[Any], self._get("/_emulator/faults"))

    def clear_faults(self) -> None:
        self._check(self._http.delete("/_emulator/faults"))

    def reset(self, *, config: bool = False) -> None:
        """Forget data, counts and queued faults; `config=True` restores the start config."""
        self._post("/_emulator/reset", {"config": config})

    def reset_daily(self, reset_at: str | None = None) -> str:
        """Start a new day; returns the next automatic reset time."""
        body = {"resetAt": reset_at} if reset_at else {}
        return str(self._post("/_emulator/daily/reset", body)["nextResetAt"])

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, **params: str) -> Any:
        return self._check(self._http.get(path, params=params))

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self._http.post(path, json=body))

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ControlError(f"{response.request.url.path}: {message}")
        return response.json()
