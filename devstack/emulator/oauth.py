"""HubSpot's OAuth 2.0 refresh-token grant (`POST /oauth/v3/token`), for the emulator.

Owns issued access and refresh tokens, their lifetimes and the client each access token was
issued to; the gate asks `valid(token)` and `client_of(token)`.
Clients and their initial refresh tokens come from the config (`oauth_clients`,
`oauth_refresh_tokens`); each refresh rotates the refresh token and issues an access token
that expires after `oauth_access_ttl_s`.
"""

from __future__ import annotations

import secrets
import threading

from devstack.emulator.clock import Clock
from devstack.emulator.config import EmulatorConfig


class OAuthIssuer:
    """Issued tokens: access token -> (expiry (monotonic), client id), live refresh tokens."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._access: dict[str, tuple[float, str]] = {}
        self._refresh: set[str] = set()
        self._lock = threading.Lock()
        self.refreshes = 0

    def valid(self, token: str | None) -> bool:
        with self._lock:
            issued = self._access.get(token or "")
            return issued is not None and self._clock.monotonic() < issued[0]

    def client_of(self, token: str | None) -> str | None:
        """The client id an access token was issued to (expired or not), else None."""
        with self._lock:
            issued = self._access.get(token or "")
            return issued[1] if issued is not None else None

    def refresh(self, cfg: EmulatorConfig, form: dict[str, str]) -> dict[str, object] | None:
        """New tokens for a valid refresh grant, or None when the grant is refused."""
        if form.get("grant_type") != "refresh_token":
            return None
        client_id = form.get("client_id", "")
        if client_id not in cfg.oauth_clients:
            return None
        if cfg.oauth_clients[client_id] != form.get("client_secret"):
            return None
        offered = form.get("refresh_token", "")
        with self._lock:
            if offered not in self._refresh and offered not in cfg.oauth_refresh_tokens:
                return None
            self._refresh.discard(offered)
            access, rotated = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            expiry = self._clock.monotonic() + cfg.oauth_access_ttl_s
            self._access[access] = (expiry, client_id)
            self._refresh.add(rotated)
            self.refreshes += 1
        return {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": rotated,
            "expires_in": cfg.oauth_access_ttl_s,
        }
