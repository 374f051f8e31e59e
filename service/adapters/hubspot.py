"""HubSpot over httpx: posts batch upsert bodies and translates transport failures.

Owns the HTTP client, the Authorization header and the mapping of httpx exceptions to
TransientHubSpotError. Does not interpret replies (service.responses does) and never puts
the token into a message, log line or exception.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from service import __version__
from service.errors import TransientHubSpotError
from service.responses import HttpReply

TokenSource = Callable[[], str]


class HttpxUpsertTransport:
    """Posts to `{base_url}{path}` with a Bearer token from `token_source`."""

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
        self._path = path
        self._token_source = token_source
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={
                "content-type": "application/json",
                "accept": "application/json",
                "user-agent": f"subscription-upserter/{__version__}",
            },
            verify=verify,
            trust_env=True,
        )

    def post(self, body: bytes) -> HttpReply:
        headers = {"authorization": f"Bearer {self._token_source()}"}
        try:
            response = self._client.post(self._path, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientHubSpotError(f"request timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientHubSpotError(f"connection failed ({type(exc).__name__})") from exc
        return HttpReply(response.status_code, response.headers, response.content)

    def close(self) -> None:
        self._client.close()


class StaticToken:
    """A token given once (private app token or service key)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(***)"


class FileToken:
    """A token read from a mounted file, re-read whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
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
            self._stamp = stamp
        return self._token

    def __repr__(self) -> str:
        return f"FileToken({self._path})"
