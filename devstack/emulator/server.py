"""Binding the aiohttp application to a socket, on the caller's event loop.

Owns start/stop of the aiohttp runner (no access log, no signal handling, a short shutdown
grace so held "timeout" faults do not delay a stop) and the bound URL. Used by `runner`
(thread) and `__main__` (CLI); neither knows aiohttp's runner API.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from devstack.emulator.app import build_app
from devstack.emulator.state import EmulatorState

SHUTDOWN_GRACE_SECONDS = 1.0


class Server:
    """One listening emulator."""

    def __init__(
        self,
        state: EmulatorState,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.state = state
        self._host = host
        self._port = port
        self._tls = tls
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.tls_url = ""

    async def start(self) -> str:
        """Listen; returns the base URL (the real port when 0 was asked)."""
        runner = web.AppRunner(
            build_app(self.state),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        if self._tls is not None:
            await web.TCPSite(runner, self._host, 0, ssl_context=self._tls).start()
            self.tls_url = f"https://{self._host}:{runner.addresses[1][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
