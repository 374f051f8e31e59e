"""One running emulator's mutable state, and the run-time operations of the control API.

Owns the current config and the catalog derived from it (object types, their schemas and
association types: one immutable pair, swapped in a single assignment on a patch, so no
reader ever sees a config with another config's catalog),
the store, the two rate budgets, the fault plan and the random generator, plus `reset` and
`stats`. A patch applies to whatever a request reads after it. It holds no HTTP code.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devstack.emulator.catalog import Catalog
from devstack.emulator.clock import Clock, SystemClock, iso_millis
from devstack.emulator.config import EmulatorConfig, parse_instant
from devstack.emulator.faults import FaultPlan
from devstack.emulator.oauth import OAuthIssuer
from devstack.emulator.ratelimit import DailyCounter, RollingWindow
from devstack.emulator.store import Store


@dataclass(frozen=True, slots=True)
class Active:
    """The config in force and its derived catalog, always replaced together."""

    config: EmulatorConfig
    catalog: Catalog


class EmulatorState:
    """Everything a running emulator knows. Safe to share between the server and tests."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.initial_config = config
        self._active = Active(config, Catalog(config))
        self.rng = random.Random(config.seed)
        self.store = Store(config.request_log_limit)
        self.window = RollingWindow(self.clock)
        self.daily = DailyCounter(self.clock, _reset_time(config))
        self.faults = FaultPlan(self.rng)
        self.oauth = OAuthIssuer(self.clock)

    @property
    def active(self) -> Active:
        """Config and catalog as one consistent snapshot."""
        return self._active

    @property
    def config(self) -> EmulatorConfig:
        return self._active.config

    @property
    def catalog(self) -> Catalog:
        return self._active.catalog

    def configure(self, patch: dict[str, Any]) -> EmulatorConfig:
        """Apply a JSON patch of config fields; raises ConfigError and changes nothing if bad."""
        new = self.config.patched(patch)
        self._install(new, changed=set(patch))
        return new

    def reset(self, *, restore_config: bool = False) -> None:
        """Forget records, history, the request log, rate counts and queued faults."""
        if restore_config:
            self._install(self.initial_config, changed={"seed", "daily_reset_at"})
        self.store.reset(self.config.request_log_limit)
        self.window.reset()
        self.daily.reset(_reset_time(self.config))
        self.faults.clear()

    def reset_daily(self, next_reset_at: str | None = None) -> datetime:
        """Start a new day now; returns when the next automatic reset happens."""
        when = parse_instant(next_reset_at) if next_reset_at else _reset_time(self.config)
        self.daily.reset(when)
        return self.daily.reset_at

    def stats(self) -> dict[str, Any]:
        cfg = self.config
        interval_s = cfg.rate_limit_interval_ms / 1000
        usage = self.window.usage(interval_s)
        return {
            **self.store.counters(),
            "oauthRefreshes": self.oauth.refreshes,
            "window": {
                "intervalMs": cfg.rate_limit_interval_ms,
                "max": cfg.rate_limit_max,
                "current": sum(usage.values()),
                "currentByToken": {_fingerprint(k): v for k, v in usage.items()},
                "peakByToken": {_fingerprint(k): v for k, v in self.window.peaks().items()},
            },
            "daily": {
                "limit": cfg.daily_limit,
                "used": self.daily.used,
                "resetAt": iso_millis(self.daily.reset_at),
            },
            "pendingFaults": self.faults.pending(),
        }

    def _install(self, new: EmulatorConfig, changed: set[str]) -> None:
        self._active = Active(new, Catalog(new))
        if "seed" in changed:
            self.rng.seed(new.seed)
        if "daily_reset_at" in changed:
            self.daily.reschedule(_reset_time(new))
        if "request_log_limit" in changed:
            self.store.set_request_log_limit(new.request_log_limit)


def _reset_time(config: EmulatorConfig) -> datetime | None:
    return parse_instant(config.daily_reset_at) if config.daily_reset_at else None


def _fingerprint(token: str) -> str:
    """Tokens never appear in output: show a short stable digest instead."""
    if not token:
        return "(none)"
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:10]
