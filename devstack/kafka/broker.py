"""A real single-node Apache Kafka broker (KRaft) run as a child process, for dev and tests.

:class:`LocalBroker` writes a ``server.properties`` into a work directory, formats the KRaft log
directory once (so a restart keeps the data), starts ``java -cp '<libs>/*' kafka.Kafka`` with its
output in ``<work dir>/broker.log`` and waits until a confluent-kafka ``AdminClient`` can list
topics. The jars come from :func:`ensure_kafka_libs` (Maven, cached outside the repository).

Only loopback addresses are used. The broker is a combined broker+controller node with one
``PLAINTEXT`` client listener and one ``CONTROLLER`` listener; further listeners (for example a
later ``SASL_SSL`` one) can be declared with :class:`Listener` plus ``extra_properties`` and extra
``format_args`` (``--add-scram ...``).

:func:`create_topics` creates topics and waits until their partitions have leaders.

On Linux the broker is tied to the thread that started it (``PR_SET_PDEATHSIG``): if the Python
process dies without stopping it, the kernel kills the JVM rather than leaving an orphan
holding ports and memory. Pass ``die_with_parent=False`` when starting from a short-lived thread.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.kafka.libs import DevstackError, ensure_kafka_libs, find_executable
from devstack.proc import HOST, free_ports, parent_death_signal_hook, port_open, tail_file

__all__ = [
    "HOST",
    "BrokerError",
    "Listener",
    "LocalBroker",
    "PropertyValue",
    "create_topics",
    "ensure_kafka_libs",
    "free_ports",
    "tail_file",
]

PropertyValue = str | int | float | bool
"""A ``server.properties`` value; booleans are written as ``true``/``false``."""

_LOG = logging.getLogger(__name__)
_CLIENT_LOG = logging.getLogger(__name__ + ".client")
_LOG_TAIL_LINES = 40
_FORMAT_TIMEOUT_S = 120.0
_START_MARKER = "==== devstack: starting broker"

# JVM flags for a small, quiet broker on a 2-core machine. Later flags win, so callers can
# override any of these through ``jvm_args``.
_BROKER_JVM_FLAGS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-Xss512k",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# The one-shot StorageTool needs no JIT beyond C1 and little heap.
_TOOL_JVM_FLAGS: tuple[str, ...] = (
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

_LOG4J2_TEMPLATE = """\
# Written by devstack.kafka.broker: broker logs go to stdout, which is broker.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = OUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.network.name = kafka.network.RequestChannel$
logger.network.level = WARN
"""


class BrokerError(DevstackError):
    """The local broker failed to format, start or stop."""


@dataclass(frozen=True)
class Listener:
    """An additional broker listener on the loopback address.

    ``name`` is the listener name (upper case, e.g. ``"SASL_SSL"`` or ``"EXTERNAL"``),
    ``protocol`` its security protocol (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``,
    ``SASL_SSL``). ``port=0`` picks a free port when the broker is constructed. Settings such as
    ``sasl.enabled.mechanisms`` or ``listener.name.<name>.ssl.keystore.location`` go in the
    broker's ``extra_properties``.
    """

    name: str
    port: int = 0
    protocol: str = "PLAINTEXT"


def _new_cluster_id() -> str:
    """Return a KRaft cluster id: a random UUID in URL-safe base64 without padding."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cluster_id


def _escape_properties(text: str, *, key: bool) -> str:
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif key and ch in " :=#!":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _format_value(value: PropertyValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class LocalBroker:
    """A single-node KRaft Kafka broker+controller running as a child JVM.

    Ports are fixed at construction (free loopback ports unless given), so
    :attr:`bootstrap_servers` is known before :meth:`start` and stays the same across
    :meth:`restart`. All state lives under ``work_dir``: ``server.properties``,
    ``log4j2.properties``, ``broker.log`` (appended to on every start) and ``data/`` (the KRaft
    log directory, formatted once).

    Use as a context manager (start on enter, stop on exit) or call :meth:`start` and
    :meth:`stop` yourself.
    """

    def __init__(
        self,
        work_dir: Path | str,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        extra_properties: Mapping[str, PropertyValue] | None = None,
        listeners: Sequence[Listener] = (),
        format_args: Sequence[str] = (),
        jvm_args: Sequence[str] = (),
        log_level: str = "INFO",
        libs: Path | None = None,
        die_with_parent: bool = True,
    ) -> None:
        """Describe a broker; nothing runs until :meth:`start`.

        ``heap`` is the JVM's ``-Xmx`` size. ``extra_properties`` are written after (and so
        override) the defaults. ``listeners`` are added to the PLAINTEXT and CONTROLLER ones.
        ``format_args`` are appended to ``StorageTool format`` (e.g. ``--add-scram``).
        ``jvm_args`` come after the default JVM flags, so they win. ``libs`` skips
        :func:`ensure_kafka_libs` and uses that jar directory instead.
        """
        self.work_dir = Path(work_dir).resolve()
        reserved = {"PLAINTEXT", "CONTROLLER"}
        names = [lst.name.upper() for lst in listeners]
        if reserved & set(names) or len(set(names)) != len(names):
            raise ValueError(f"listener names must be unique and not {sorted(reserved)}: {names}")
        wanted = [port or 0, controller_port or 0, *(lst.port for lst in listeners)]
        picked = iter(free_ports(wanted.count(0)))
        resolved = [p if p else next(picked) for p in wanted]
        self.port: int = resolved[0]
        self.controller_port: int = resolved[1]
        self.listeners: tuple[Listener, ...] = tuple(
            Listener(lst.name.upper(), p, lst.protocol.upper())
            for lst, p in zip(listeners, resolved[2:], strict=True)
        )
        self.heap = heap
        self.extra_properties: dict[str, PropertyValue] = dict(extra_properties or {})
        self.format_args = tuple(format_args)
        self.jvm_args = tuple(jvm_args)
        self.log_level = log_level
        self.die_with_parent = die_with_parent
        self._libs = libs
        self._proc: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------------------------- properties

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT`` of the PLAINTEXT client listener."""
        return f"{HOST}:{self.port}"

    def listener_port(self, name: str) -> int:
        """Return the port of listener ``name`` (``PLAINTEXT``, ``CONTROLLER`` or an extra one)."""
        upper = name.upper()
        if upper == "PLAINTEXT":
            return self.port
        if upper == "CONTROLLER":
            return self.controller_port
        for lst in self.listeners:
            if lst.name == upper:
                return lst.port
        raise KeyError(name)

    @property
    def log_dir(self) -> Path:
        """The KRaft metadata and data log directory (``log.dirs``)."""
        return self.work_dir / "data"

    @property
    def log_file(self) -> Path:
        """The broker's combined stdout/stderr, appended to on every start."""
        return self.work_dir / "broker.log"

    @property
    def properties_file(self) -> Path:
        """The generated ``server.properties``."""
        return self.work_dir / "server.properties"

    @property
    def is_formatted(self) -> bool:
        """Whether the log directory was already formatted (a start keeps its data)."""
        return (self.log_dir / "meta.properties").is_file()

    @property
    def is_running(self) -> bool:
        """Whether the broker JVM is alive (it may still be starting)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs, else ``None``."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    def server_properties(self) -> dict[str, str]:
        """Return the broker configuration that :meth:`start` writes, defaults then extras."""
        listeners = [("PLAINTEXT", self.port, "PLAINTEXT")]
        listeners += [(lst.name, lst.port, lst.protocol) for lst in self.listeners]
        every = [*listeners, ("CONTROLLER", self.controller_port, "PLAINTEXT")]
        props: dict[str, PropertyValue] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(f"{n}://{HOST}:{p}" for n, p, _ in every),
            "advertised.listeners": ",".join(f"{n}://{HOST}:{p}" for n, p, _ in listeners),
            "listener.security.protocol.map": ",".join(f"{n}:{proto}" for n, _, proto in every),
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "auto.create.topics.enable": False,
            "group.initial.rebalance.delay.ms": 0,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 10,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 10,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "log.retention.check.interval.ms": 60000,
            # After a SIGKILL the restarted broker cannot register until its old session
            # expires (DUPLICATE_BROKER_REGISTRATION); the default 9 s makes crash tests slow.
            "broker.heartbeat.interval.ms": 500,
            "broker.session.timeout.ms": 3000,
        }
        props.update(self.extra_properties)
        return {key: _format_value(value) for key, value in props.items()}

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 60.0) -> None:
        """Write the config, format the log dir if needed, start the JVM and wait until ready.

        Raises :class:`BrokerError` (with the tail of ``broker.log``) if the JVM exits early or
        the broker does not answer a metadata request within ``timeout_s``; the JVM is killed
        in that case. A first-time jar fetch (:func:`ensure_kafka_libs`) is not counted in
        ``timeout_s``.
        """
        if self.is_running:
            raise BrokerError(f"broker in {self.work_dir} is already running (pid {self.pid})")
        java = find_executable("java", "JAVA_HOME")
        libs = self._libs or ensure_kafka_libs()  # not counted in timeout_s: Maven may be slow
        deadline = time.monotonic() + timeout_s
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self.is_formatted:
            self._format(java, libs)

        cmd = [
            java,
            f"-Xmx{self.heap}",
            *_BROKER_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.work_dir}",
            *self.jvm_args,
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.properties_file),
        ]
        preexec = parent_death_signal_hook() if self.die_with_parent else None
        with self.log_file.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"{_START_MARKER} at {stamp} ====\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.work_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509 - it only calls prctl(2) and getppid(2)
            )
        _LOG.info("kafka broker pid %s starting on %s", self._proc.pid, self.bootstrap_servers)
        try:
            self._wait_ready(deadline, timeout_s)
        except BaseException:
            self.kill()
            raise

    def ensure_running(self, timeout_s: float = 60.0) -> None:
        """Start the broker unless it is already running (e.g. after a test killed it)."""
        if not self.is_running:
            self.start(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop the broker: SIGTERM, wait up to ``timeout_s``, then SIGKILL.

        Returns the JVM's exit code, or ``None`` if it was not started. Safe to call twice.
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _LOG.warning("kafka broker pid %s ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the broker at once (a crash, for tests) and reap it."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        return proc.returncode

    def restart(self, timeout_s: float = 60.0, *, stop_timeout_s: float = 30.0) -> None:
        """Stop (cleanly) and start again on the same ports and log directory."""
        self.stop(stop_timeout_s)
        self.start(timeout_s)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of ``broker.log``."""
        return tail_file(self.log_file, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"LocalBroker({self.bootstrap_servers}, {self.work_dir}, {state})"

    # -------------------------------------------------------------------------------- helpers

    def _write_config(self) -> None:
        lines = ["# Written by devstack.kafka.broker; rewritten on every start."]
        for key, value in self.server_properties().items():
            lines.append(
                f"{_escape_properties(key, key=True)}={_escape_properties(value, key=False)}"
            )
        self.properties_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.work_dir / "log4j2.properties").write_text(
            _LOG4J2_TEMPLATE.format(level=self.log_level), encoding="utf-8"
        )

    def _format(self, java: str, libs: Path) -> None:
        cluster_id = _new_cluster_id()
        cmd = [
            java,
            *_TOOL_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.properties_file),
            *self.format_args,
        ]
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.work_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"kafka StorageTool format timed out in {self.work_dir}") from exc
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write(f"==== devstack: StorageTool format (cluster id {cluster_id}) ====\n")
            log.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            output = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
            raise BrokerError(
                f"kafka StorageTool format failed (exit {proc.returncode}) in {self.log_dir}:\n"
                f"{output}"
            )

    def _startup_cause(self) -> str:
        """Return ``": <root cause>"`` from this start's section of the log, or ``""``."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 512 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        section = text.rsplit(_START_MARKER, 1)[-1].splitlines()
        causes = [line[len("Caused by: ") :] for line in section if line.startswith("Caused by: ")]
        if causes:  # the root cause, and the one above it (which often names the port/path)
            return ": " + " <- ".join(cause.strip() for cause in causes[-2:])
        errors = [line for line in section if " ERROR " in line or line.startswith("Error")]
        return ": " + errors[-1].strip() if errors else ""

    def _wait_ready(self, deadline: float, timeout_s: float) -> None:
        proc = self._proc
        assert proc is not None
        admin: AdminClient | None = None
        while True:
            code = proc.poll()
            if code is not None:
                raise BrokerError(
                    f"kafka broker exited with code {code} during startup{self._startup_cause()}"
                    f"\ntail of {self.log_file}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"kafka broker on {self.bootstrap_servers} not ready after {timeout_s:.0f}s"
                    f"{self._startup_cause()}\ntail of {self.log_file}:\n{self.log_tail()}"
                )
            if port_open(self.port):
                if admin is None:
                    admin = _admin(self.bootstrap_servers)
                try:
                    metadata = admin.list_topics(timeout=max(0.5, min(5.0, remaining)))
                except KafkaException:
                    pass
                else:
                    if metadata.brokers:
                        return
            time.sleep(0.2)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.connection.setup.timeout.ms": 5000,
            "logger": _CLIENT_LOG,  # librdkafka's connect errors go to logging, not stderr
        }
    )


def _topic_ready(admin: AdminClient, name: str, partitions: int, timeout_s: float) -> bool:
    try:
        metadata = admin.list_topics(topic=name, timeout=timeout_s)
    except KafkaException:
        return False
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None or len(topic.partitions) < partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in topic.partitions.values())


def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> None:
    """Create ``topics`` (name -> partition count) and wait until every partition has a leader.

    ``config`` (topic-level settings such as ``cleanup.policy``) applies to every topic. A topic
    that already exists is not an error. Raises :class:`DevstackError` on any other failure or
    on timeout.
    """
    if not topics:
        return
    deadline = time.monotonic() + timeout_s
    admin = _admin(bootstrap)
    new = [
        NewTopic(
            name,
            num_partitions=count,
            replication_factor=replication_factor,
            config=dict(config or {}),
        )
        for name, count in topics.items()
    ]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise DevstackError(f"creating topic {name!r} failed: {exc}") from exc
        except TimeoutError as exc:
            raise DevstackError(f"creating topic {name!r} timed out after {timeout_s}s") from exc
    pending = dict(topics)
    while pending:
        remaining = deadline - time.monotonic()
        for name, count in list(pending.items()):
            if _topic_ready(admin, name, count, max(0.5, min(5.0, remaining))):
                del pending[name]
        if not pending:
            break
        if time.monotonic() >= deadline:
            raise DevstackError(f"topics {sorted(pending)} have no leaders after {timeout_s}s")
        time.sleep(0.1)
    _wait_until_leaders_answer(bootstrap, topics, deadline)


def _wait_until_leaders_answer(bootstrap: str, topics: Mapping[str, int], deadline: float) -> None:
    """Wait until every partition's leader answers an offsets request.

    In KRaft the metadata can name a leader a moment before that broker acts as one, and a
    request in that gap fails with NOT_LEADER_FOR_PARTITION.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"devstack-{uuid.uuid4().hex}",
            "logger": _CLIENT_LOG,
        }
    )
    try:
        for name, count in topics.items():
            for partition in range(count):
                watermark_offsets(
                    consumer, TopicPartition(name, partition), max(0.5, deadline - time.monotonic())
                )
    finally:
        consumer.close()


def watermark_offsets(
    consumer: Consumer, partition: TopicPartition, timeout_s: float
) -> tuple[int, int]:
    """The partition's (low, high) watermarks, asked again while its leader is not yet acting."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                partition, timeout=max(0.5, min(5.0, deadline - time.monotonic()))
            )
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                where = f"{partition.topic}[{partition.partition}]"
                raise DevstackError(f"{where} gave no offsets in {timeout_s}s: {exc}") from exc
            time.sleep(0.1)
