"""A real Apicurio Registry run as a child JVM on loopback, for dev and tests.

:class:`LocalRegistry` starts ``java -jar apicurio-registry-app-<version>-runner.jar`` from the
cached distribution (:func:`ensure_registry_dist`) with its output in
``<work dir>/registry.log`` and waits until the Confluent-compatible API
(``/apis/ccompat/v7``) answers ``GET /subjects`` with 200. No authentication. Storage is an H2
database in ``<work dir>/data`` by default, so a restart keeps every schema and its id (as a
restarted Kafka broker keeps its log); ``persistent=False`` keeps it in memory instead, empty
at each start.

Without a port the first start asks for port 0 and reads the one Quarkus took from its
"Listening on: http://127.0.0.1:N" line (no race with other processes picking free ports);
later restarts reuse that port, so a client's URL stays valid across a restart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import httpx

from devstack.proc import HOST, ChildProcess, ChildServer, DevstackError, find_executable
from devstack.registry.dist import APICURIO_VERSION, ensure_registry_dist, runner_jar

__all__ = ["CCOMPAT_PATH", "LocalRegistry", "RegistryError"]

CCOMPAT_PATH = "/apis/ccompat/v7"
"""Where Apicurio serves the Confluent Schema Registry API."""

_LISTENING = re.compile(r"Listening on: http://127\.0\.0\.1:(\d+)")
_JVM_FLAGS: tuple[str, ...] = (
    "-Xms32m",  # grow the heap as needed: about 165 MB RSS after start instead of 230 MB
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",  # C1 only: starts faster on 2 cores; plenty for tests
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# The distribution logs io.quarkus at WARN and formats dates as "YYYY-MMx-dd" (a week-year and
# a zone offset in the middle of the date). INFO prints the "Listening on" line.
_LOG_PROPERTIES: tuple[str, ...] = (
    '-Dquarkus.log.category."io.quarkus".level=INFO',
    "-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %p [%c{3.}] (%t) %m%n",
)


class RegistryError(DevstackError):
    """The local registry failed to start or stop."""


class LocalRegistry(ChildServer):
    """Apicurio Registry (Confluent-compatible API) running as a child JVM on loopback.

    Use as a context manager (start on enter, stop on exit) or call :meth:`start` and
    :meth:`stop`; a restart keeps the port (and, when persistent, the data). :attr:`url` is
    what confluent-kafka's ``SchemaRegistryClient`` takes.
    """

    start_timeout_s = 60.0
    error = RegistryError

    def __init__(
        self,
        work_dir: Path | str,
        *,
        port: int | None = None,
        heap: str = "256m",
        persistent: bool = True,
        jvm_args: Sequence[str] = (),
        dist: Path | None = None,
        die_with_parent: bool = True,
    ) -> None:
        """Describe a registry; nothing runs until :meth:`start`.

        ``port`` ``None`` lets the first start pick one (see the module docs). ``heap`` is the
        JVM's ``-Xmx``. ``jvm_args`` come last, so they override (``-Dkey=value`` sets any
        Quarkus or Apicurio property). ``dist`` skips :func:`ensure_registry_dist`.
        """
        self.work_dir = Path(work_dir).resolve()
        self.port: int | None = port
        self.heap = heap
        self.persistent = persistent
        self.jvm_args = tuple(jvm_args)
        self._dist = dist
        self._child = ChildProcess(
            f"apicurio-registry {APICURIO_VERSION}",
            self.work_dir / "registry.log",
            die_with_parent=die_with_parent,
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; raises :class:`RegistryError` before the port is known."""
        if self.port is None:
            raise RegistryError("the registry's port is known once it has started")
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The Confluent-compatible API: ``http://127.0.0.1:PORT/apis/ccompat/v7``."""
        return self.base_url + CCOMPAT_PATH

    def command(self, java: str, jar: Path) -> list[str]:
        """The command line that starts the registry."""
        storage = []
        if self.persistent:
            db = self.work_dir / "data" / "registry"
            storage = [f"-Dapicurio.datasource.url=jdbc:h2:file:{db}"]
        return [
            java,
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            f"-Dquarkus.http.host={HOST}",
            f"-Dquarkus.http.port={self.port or 0}",
            *_LOG_PROPERTIES,
            *storage,
            *self.jvm_args,
            "-jar",
            str(jar),
        ]

    def _spawn(self) -> None:
        java = find_executable("java", needed_for="run Apicurio Registry", home_env="JAVA_HOME")
        jar = runner_jar(self._dist or ensure_registry_dist())
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._child.spawn(self.command(java, jar), cwd=self.work_dir)

    def _ready(self, client: httpx.Client) -> bool:
        """``GET /subjects`` answers 200 (on a first start, once the log names the port)."""
        if self.port is None:
            found = _LISTENING.search(self._child.log_since_start())
            if found is None:
                return False
            self.port = int(found.group(1))
        try:
            return client.get(self.url + "/subjects").status_code == httpx.codes.OK
        except httpx.TransportError:
            return False

    def __repr__(self) -> str:
        where = f"port {self.port}" if self.port else "no port yet"
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"LocalRegistry({where}, {self.work_dir}, {state})"
