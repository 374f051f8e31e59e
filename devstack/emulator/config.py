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

FAULT_STATUSES = ("500", "502", "503", "504", "521", "523", "524", "423", "477")
FAULT_KINDS = (*FAULT_STATUSES, "timeout", "drop")

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
DEFAULT_READ_ONLY_PROPERTIES = frozenset({"hs_object_id", "hs_createdate", "hs_lastmodifieddate"})

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
        _check_positive(self)
        _check_fault_rates(self.fault_rates)
        if self.daily_reset_at is not None:
            parse_instant(self.daily_reset_at)
        return self

    @property
    def schema_properties(self) -> frozenset[str]:
        """Properties an input may write: the known ones plus the unique id properties."""
        return self.known_properties | self.unique_id_properties

    def object_type_id(self, object_type: str) -> str:
        """HubSpot's numeric type id (`0-69`) used in messages, else the name itself."""
        return self.object_type_ids.get(object_type, object_type)

    def patched(self, patch: dict[str, Any]) -> EmulatorConfig:
        """A copy with the fields in `patch` replaced (validated; unknown keys rejected)."""
        merged = {**self.to_dict(), **patch}
        return config_from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (sets become sorted lists)."""
        raw: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return {k: sorted(v) if isinstance(v, list) else v for k, v in raw.items()}


def _check_positive(cfg: EmulatorConfig) -> None:
    checks = {
        "max_inputs": cfg.max_inputs > 0,
        "max_value_length": cfg.max_value_length > 0,
        "max_body_bytes": cfg.max_body_bytes > 0,
        "rate_limit_max": cfg.rate_limit_max is None or cfg.rate_limit_max > 0,
        "rate_limit_interval_ms": cfg.rate_limit_interval_ms > 0,
        "daily_limit": cfg.daily_limit is None or cfg.daily_limit > 0,
        "latency_ms": cfg.latency_ms >= 0,
        "jitter_ms": cfg.jitter_ms >= 0,
        "timeout_hold_seconds": cfg.timeout_hold_seconds >= 0,
        "retry_after_seconds": cfg.retry_after_seconds >= 0,
        "request_log_limit": cfg.request_log_limit is None or cfg.request_log_limit > 0,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"out of range: {', '.join(bad)}")


def _check_fault_rates(rates: dict[str, float]) -> None:
    unknown = sorted(set(rates) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
    if any(not 0.0 <= p <= 1.0 for p in rates.values()) or sum(rates.values()) > 1.0:
        raise ValueError("fault_rates must be probabilities in [0, 1] summing to at most 1")


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
