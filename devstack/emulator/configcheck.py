"""Checks of an `EmulatorConfig` beyond field types: ranges, fault kinds, association types.

Owns the fault vocabulary (`FAULT_STATUSES`, `FAULT_KINDS`) and `check_config`, which raises
ValueError naming what is wrong; `config` calls it when a config is built or patched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devstack.emulator.objectconfig import AssociationType, ContentFault

if TYPE_CHECKING:
    from devstack.emulator.config import EmulatorConfig

FAULT_STATUSES = ("500", "502", "503", "504", "521", "523", "524", "423", "477")
FAULT_KINDS = (*FAULT_STATUSES, "timeout", "drop")


def check_config(cfg: EmulatorConfig) -> None:
    """Raise ValueError on the first kind of problem found."""
    _check_positive(cfg)
    _check_fault_rates(cfg.fault_rates)
    _check_faults(cfg.content_faults, cfg.outage)
    _check_association_types(cfg.association_types)


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
        "max_association_inputs": cfg.max_association_inputs > 0,
        "max_association_read_inputs": cfg.max_association_read_inputs > 0,
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


def _check_faults(rules: list[ContentFault], outage: str | None) -> None:
    bad = [r.fault_kind() for r in rules if r.fault_kind() not in FAULT_KINDS]
    if bad:
        raise ValueError(f"content_faults: unknown status {bad}; known: {list(FAULT_KINDS)}")
    if outage is not None and outage not in FAULT_KINDS:
        raise ValueError(f"outage: unknown fault {outage!r}; known: {list(FAULT_KINDS)}")


def _check_association_types(types: list[AssociationType]) -> None:
    """Unique keys, and every named inverse defined. (Types between object types that are
    not served are allowed, and ignored: the defaults name subscriptions.)"""
    keys = {(t.from_object_type, t.to_object_type, t.category, t.type_id) for t in types}
    if len(keys) != len(types):
        raise ValueError("association_types: the same (from, to, category, type_id) twice")
    for t in types:
        pair = f"{t.from_object_type}->{t.to_object_type}"
        inverse = (t.to_object_type, t.from_object_type, t.category, t.inverse_type_id)
        if t.inverse_type_id is not None and inverse not in keys:
            raise ValueError(f"association_types: {pair} {t.type_id} has no inverse type")
