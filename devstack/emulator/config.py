"""The emulator's configuration: one frozen, validated `EmulatorConfig`.

Owns every knob of the emulator (served paths, tokens, schema, limits, latency, faults, output
options), its defaults, and the three ways to build one: keyword arguments, a JSON file
(`load_config`) and a JSON patch applied at run time (`EmulatorConfig.patched`). Unknown keys
and bad values raise `ConfigError`. It must not hold run-time state (counters, records).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from devstack.emulator.configcheck import check_config
from devstack.emulator.objectconfig import (
    BASE_READ_ONLY,
    DEFAULT_OBJECT_SCHEMAS,
    AssociationType,
    ContentFault,
    ObjectSchema,
    default_association_types,
)

DEFAULT_TOKEN = "emulator-token"
DEFAULT_KNOWN_PROPERTIES = frozenset(
    {
        "hs_name",
        "hs_status",
        "hs_recurring_billing_start_date",
        "hs_recurring_billing_frequency",
        "hs_next_payment_due_date",
        "hs_currency_code",
        "hs_invoice_creation",
        "hs_amount",
        "hs_product_id",
    }
)
DEFAULT_READ_ONLY_PROPERTIES = BASE_READ_ONLY

FaultWhen = Literal["before", "after"]


class ConfigError(ValueError):
    """A configuration file, flag or patch that cannot be applied; the message says why."""


def _no_extra_fields() -> ConfigDict:
    return ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_no_extra_fields())
class EmulatorConfig:
    """Everything the emulator can be told. Defaults mimic a Professional private app."""

    host: str = "127.0.0.1"
    port: int = 0
    # Paths served: /crm/v3/objects/{type}/... and /crm/objects/{version}/{type}/...
    object_types: frozenset[str] = frozenset({"subscriptions"})
    object_type_ids: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"subscriptions": "0-69"}
    )
    api_versions: frozenset[str] = frozenset({"2026-03"})
    # Authentication: valid tokens, and valid tokens that lack the write scope (403).
    tokens: frozenset[str] = frozenset({DEFAULT_TOKEN})
    accept_any_token: bool = False
    no_scope_tokens: frozenset[str] = frozenset()
    # Schema of the served object type(s).
    unique_id_properties: frozenset[str] = frozenset({"external_subscription_id"})
    known_properties: frozenset[str] = DEFAULT_KNOWN_PROPERTIES
    read_only_properties: frozenset[str] = DEFAULT_READ_ONLY_PROPERTIES
    required_to_create: frozenset[str] = frozenset({"hs_name"})
    max_inputs: int = 100
    # Other CRM object types (contacts, companies, deals, custom objects by name), each with
    # its own schema; served by the same object endpoints. A type also listed in
    # `object_types` uses the top-level schema fields above instead.
    object_schemas: dict[str, ObjectSchema] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_OBJECT_SCHEMAS)
    )
    # Association types per ordered pair of object types (v4 associations).
    association_types: list[AssociationType] = dataclasses.field(
        default_factory=default_association_types
    )
    # v4 association batch limits: create and associate/default (2,000, as connectors that
    # wrap the endpoint document it), batch read (1,000: HubSpot changelog, February 2025).
    max_association_inputs: int = 2_000
    max_association_read_inputs: int = 1_000
    max_value_length: int = 65_536
    # HubSpot documents no body byte limit; a bigger body is a 413 VALIDATION_ERROR.
    max_body_bytes: int = 64 * 1024 * 1024
    # Limits: burst window per app (a private-app token, or an OAuth client: its refreshed
    # tokens share one window; None = unlimited) and daily per account.
    rate_limit_max: int | None = 190
    rate_limit_interval_ms: int = 10_000
    daily_limit: int | None = None
    daily_reset_at: str | None = None
    daily_headers: bool = True
    retry_after_on_429: bool = False
    rate_limit_body: Literal["policy", "category"] = "policy"
    # Latency added to every upsert: base + uniform jitter, in milliseconds.
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # Random faults: kind -> probability per request; and where they strike.
    fault_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    fault_when: FaultWhen = "before"
    # Upserts with an input carrying a given property value get a fault (see ContentFault).
    content_faults: list[ContentFault] = dataclasses.field(default_factory=list)
    # A total outage: every HubSpot request gets this fault kind (e.g. "503") before
    # authentication and rate limits are even looked at; None: no outage.
    outage: str | None = None
    timeout_hold_seconds: float = 30.0
    retry_after_seconds: int = 2
    # Response shape and bookkeeping.
    echo_trace_id: bool = True
    shuffle_results: bool = False
    seed: int | None = None
    # Every write is kept (about 0.7 KB each): switch off for long benchmarks.
    record_history: bool = True
    # False: an invalid input rejects the whole request with a 400 and no per-input context,
    # even when every input has a unique trace id (HubSpot does this for some validation errors).
    multi_status: bool = True
    # OAuth refresh-token grant at /oauth/v3/token: client id -> secret, initial refresh tokens.
    oauth_clients: dict[str, str] = dataclasses.field(default_factory=dict)
    oauth_refresh_tokens: frozenset[str] = frozenset()
    oauth_access_ttl_s: int = 1_800
    # HubSpot states no daily limit for OAuth apps (and sends them no daily headers): True
    # makes OAuth-issued tokens count against and be stopped by `daily_limit` too.
    oauth_daily_limit: bool = False
    # Newest request log entries kept (None: all); counters in stats are never trimmed.
    request_log_limit: int | None = 20_000

    @model_validator(mode="after")
    def _check(self) -> EmulatorConfig:
        check_config(self)
        if self.daily_reset_at is not None:
            parse_instant(self.daily_reset_at)
        return self

    @property
    def served_types(self) -> frozenset[str]:
        """Every object type served: `object_types` and the keys of `object_schemas`."""
        return self.object_types | frozenset(self.object_schemas)

    @property
    def schema_properties(self) -> frozenset[str]:
        """Properties an input may write: the known ones plus the unique id properties."""
        return self.known_properties | self.unique_id_properties

    def object_type_id(self, object_type: str) -> str:
        """HubSpot's numeric type id (`0-69`) used in messages, else the name itself."""
        if object_type not in self.object_types and object_type in self.object_schemas:
            return self.object_schemas[object_type].type_id
        return self.object_type_ids.get(object_type, object_type)

    def patched(self, patch: dict[str, Any]) -> EmulatorConfig:
        """A copy with the fields in `patch` replaced (validated; unknown keys rejected)."""
        merged = {**self.to_dict(), **patch}
        return config_from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (sets of strings become sorted lists, at any depth)."""
        raw: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return {k: _sorted_sets(v) for k, v in raw.items()}


def _sorted_sets(value: Any) -> Any:
    """Lists of strings sorted (they come from sets); other lists and dicts walked."""
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return sorted(value)
        return [_sorted_sets(item) for item in value]
    if isinstance(value, dict):
        return {k: _sorted_sets(v) for k, v in value.items()}
    return value


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with a zone (`2026-11-08T00:00:00Z`), as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 instant: {text!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"instant needs a time zone (e.g. a trailing Z): {text!r}")
    return parsed


_ADAPTER = TypeAdapter(EmulatorConfig)


def config_from_dict(data: dict[str, Any]) -> EmulatorConfig:
    """Build a config from a JSON-shaped dict; raises ConfigError naming each bad key."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(problems) from None


def load_config(path: str | Path) -> EmulatorConfig:
    """Read a JSON config file (an object whose keys are EmulatorConfig field names)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return config_from_dict(data)
