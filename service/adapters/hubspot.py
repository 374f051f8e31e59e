"""HubSpot over httpx: posts batch upsert bodies and translates transport failures.

Owns the HTTP client, the Authorization header and the mapping of httpx exceptions to
TransientHubSpotError. Does not interpret replies (service.core.responses does) and never puts
the token into a message, log line or exception.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import httpx

from service import __version__
from service.core.clock import Clock
from service.core.errors import AuthError, TransientHubSpotError
from service.core.responses import HttpReply


class TokenSource(Protocol):
    """Gives the Bearer token for the next request, and hears when HubSpot refused one."""

    def __call__(self) -> str: ...

    def refused(self, token: str) -> None:
        """HubSpot answered 401 to a request that carried `token`."""


class HttpxUpsertTransport:
    """Posts to `{base_url}{path}` with a Bearer token from `token_source`.

    Every request goes to the same URL, so it talks to an httpx transport (the connection
    pool) directly rather than through an httpx.Client: no URL merging, cookie jar, redirect
    or auth machinery per request, which is most of the client-side cost of a batch. The
    proxy for that URL is chosen once from the environment (HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY, NO_PROXY), as httpx.Client would.
    """

    def __init__(
        self,
        base_url: str,
        path: str,
        token_source: TokenSource,
        *,
        timeout_s: float,
        max_connections: int = 8,
        verify: bool | str = True,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._url = httpx.URL(self._base_url + path)
        self._token_source = token_source
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)).as_dict()
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": f"subscription-upserter/{__version__}",
        }
        self._transport = httpx.HTTPTransport(
            verify=verify,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=True,
            proxy=environment_proxy(self._url),
        )

    def post(self, body: bytes, path: str | None = None) -> HttpReply:
        """POST `body` to the upsert path, or to `path` (from the API root)."""
        token = self._token_source()
        headers = {**self._headers, "authorization": f"Bearer {token}"}
        url = self._url if path is None else httpx.URL(self._base_url + path)
        request = httpx.Request(
            "POST", url, headers=headers, content=body, extensions={"timeout": self._timeout}
        )
        try:
            response = self._transport.handle_request(request)
            try:
                content = response.read()
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise TransientHubSpotError(f"request timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientHubSpotError(f"connection failed ({type(exc).__name__})") from exc
        if response.status_code == 401:
            self._token_source.refused(token)
        return HttpReply(response.status_code, response.headers, content)

    def close(self) -> None:
        self._transport.close()


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy the environment names for `url` (`<scheme>_proxy`, else `all_proxy`), or None
    when there is none or NO_PROXY exempts the host."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    return proxy


class StaticToken:
    """A token given once (private app token or service key)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self) -> str:
        return self._token

    def refused(self, token: str) -> None:
        return  # nothing else to try: the hold retries the same token

    def __repr__(self) -> str:
        return "StaticToken(***)"


class FileToken:
    """A token read from a mounted file, re-read whenever the file changes."""

    def __init__(self, path: Path, on_secret: Callable[[str], None] = lambda _: None) -> None:
        self._path = path
        self._on_secret = on_secret
        self._stamp: tuple[float, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        try:
            stat = self._path.stat()
        except OSError:
            return self._token
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._token = self._path.read_text(encoding="utf-8").strip()
            self._on_secret(self._token)
            self._stamp = stamp
        return self._token

    def refused(self, token: str) -> None:
        self._stamp = None  # read the file again, even if its time and size look unchanged

    def __repr__(self) -> str:
        return f"FileToken({self._path})"


class OAuthToken:
    """An OAuth 2.0 access token, refreshed with the refresh token ahead of its expiry.

    Refresh failures raise AuthError (credentials refused: 400/401/403) or
    TransientHubSpotError (network, 429, 5xx); neither message carries a secret.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Clock,
        refresh_margin_s: float = 300.0,
        on_secret: Callable[[str], None] = lambda _: None,
        timeout_s: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        self._url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._clock = clock
        self._margin = refresh_margin_s
        self._on_secret = on_secret
        self._http = httpx.Client(timeout=timeout_s, verify=verify)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._expires_at - self._margin:
                self._refresh()
            assert self._token is not None
            return self._token

    def refused(self, token: str) -> None:
        """A revoked access token is not used until it expires: the next call refreshes."""
        with self._lock:
            if token == self._token:
                self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"OAuthToken(client_id={self._client_id!r}, ***)"

    def _refresh(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            response = self._http.post(self._url, data=form)
        except httpx.HTTPError as exc:
            raise TransientHubSpotError(f"OAuth refresh failed ({type(exc).__name__})") from exc
        if response.status_code in (400, 401, 403):
            raise AuthError(
                f"OAuth refresh refused (HTTP {response.status_code})", status=response.status_code
            )
        if response.status_code != 200:
            raise TransientHubSpotError(
                f"OAuth refresh failed (HTTP {response.status_code})", status=response.status_code
            )
        try:
            document = response.json()
        except ValueError:
            raise TransientHubSpotError(
                "OAuth refresh answered with a body that is not JSON"
            ) from None
        self._adopt(document)

    def _adopt(self, document: object) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("access_token"), str):
            raise TransientHubSpotError("OAuth refresh answered without an access_token")
        self._token = document["access_token"]
        self._on_secret(self._token)
        rotated = document.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated
            self._on_secret(rotated)
        expires_in = document.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 1_800.0
        self._expires_at = self._clock.monotonic() + lifetime
