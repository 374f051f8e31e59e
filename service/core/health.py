"""Liveness and readiness state, shared by the loop, the caller and the HTTP endpoints.

Owns the facts behind /livez and /readyz; thread-safe; does no I/O.
- live: the main loop has beaten within `stall_after_s`.
- ready: started, subscribed and assigned at least once, and nothing blocks the work
  (credentials refused, daily limit reached, the Schema Registry unavailable, draining for
  shutdown).
"""

from __future__ import annotations

import threading

from service.core.clock import Clock

AUTH_BLOCK = "credentials"
DAILY_BLOCK = "daily_limit"
SENDING_BLOCKS = (AUTH_BLOCK, DAILY_BLOCK)
READY = "ok"
STARTING = "starting"


class Health:
    """What /livez and /readyz report."""

    def __init__(self, clock: Clock, stall_after_s: float = 60.0) -> None:
        self._clock = clock
        self._stall_after_s = stall_after_s
        self._lock = threading.Lock()
        self._blocks: dict[str, tuple[str, float]] = {}  # name: (reason, when it was set)
        self._last_beat: float | None = None
        self._started = False

    def beat(self) -> None:
        self._last_beat = self._clock.monotonic()

    def started(self) -> None:
        with self._lock:
            self._started = True

    def block(self, name: str, reason: str) -> None:
        with self._lock:
            self._blocks[name] = (reason, self._clock.monotonic())

    def unblock(self, name: str, *, sent_at: float | None = None) -> None:
        """Lift a block; with `sent_at`, only if the request that proved it gone was sent
        after the block was set (a reply to an older one, or one sent as it was set, says
        nothing about it)."""
        with self._lock:
            block = self._blocks.get(name)
            if block is not None and sent_at is not None and block[1] >= sent_at:
                return
            self._blocks.pop(name, None)

    def is_blocked(self, name: str) -> bool:
        with self._lock:
            return name in self._blocks

    def sending_blocked(self) -> bool:
        """True while HubSpot refuses the credentials or the daily limit is reached."""
        with self._lock:
            return any(name in self._blocks for name in SENDING_BLOCKS)

    def live(self) -> tuple[bool, str]:
        beat = self._last_beat
        if beat is None:
            return True, "starting"
        silent = self._clock.monotonic() - beat
        if silent > self._stall_after_s:
            return False, f"main loop silent for {silent:.0f}s"
        return True, "ok"

    def readiness(self) -> str:
        """One bounded word for the readiness gauge: READY, or why not (STARTING, or the
        first block name as /readyz lists them: credentials, daily_limit, schema_registry,
        shutdown)."""
        with self._lock:
            if not self._started:
                return STARTING
            return min(self._blocks, default=READY)

    def ready(self) -> tuple[bool, list[str]]:
        with self._lock:
            reasons = [f"{name}: {reason}" for name, (reason, _) in sorted(self._blocks.items())]
            if not self._started:
                reasons.insert(0, "starting: not yet connected to Kafka")
        return not reasons, reasons or ["ok"]
