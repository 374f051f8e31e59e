"""Fetch and cache the Apache Kafka broker's runtime jars with Maven.

The jars come from Maven Central through the machine's ordinary ``mvn``: ``pom.xml`` beside this
module depends on ``org.apache.kafka:kafka_2.13`` plus an SLF4J binding, and
``mvn dependency:copy-dependencies`` copies its runtime closure into a cache outside the
repository (``~/.cache/subscription-upserter/kafka-<version>/libs`` unless
``UPSERTER_KAFKA_CACHE`` names another base directory).

The cache is filled atomically: Maven writes into a temporary sibling directory that is renamed
into place only once it is complete, so a crash never leaves a half-filled cache. A marker file
records the SHA-256 of the pom the jars came from; a later call with the same pom reuses the
cache without running Maven, and a changed pom refreshes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from devstack import proc
from devstack.proc import DevstackError

__all__ = [
    "CACHE_ENV",
    "POM_PATH",
    "DevstackError",
    "ensure_kafka_libs",
    "find_executable",
    "kafka_version",
    "libs_dir",
]

POM_PATH = Path(__file__).with_name("pom.xml")
"""The pom whose runtime dependencies make up the broker's classpath."""

CACHE_ENV = "UPSERTER_KAFKA_CACHE"
"""Environment variable naming the cache base (default ``~/.cache/subscription-upserter``)."""

_MARKER = ".pom-sha256"
_VERSION_RE = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")
_MAVEN_TIMEOUT_S = 900.0


def find_executable(name: str, java_home_env: str | None = None) -> str:
    """Return the path of executable ``name``, or raise :class:`DevstackError`.

    ``java_home_env`` (for example ``"JAVA_HOME"``) names an environment variable whose
    ``bin/`` directory is tried first.
    """
    return proc.find_executable(
        name, needed_for="run the local Kafka broker", home_env=java_home_env
    )


def kafka_version(pom: Path = POM_PATH) -> str:
    """Return the Kafka version the pom pins (its ``<kafka.version>`` property)."""
    match = _VERSION_RE.search(pom.read_text(encoding="utf-8"))
    if match is None:
        raise DevstackError(f"no <kafka.version> property in {pom}")
    return match.group(1)


def libs_dir(pom: Path = POM_PATH) -> Path:
    """Return where the jars for ``pom`` live (whether or not they were fetched yet)."""
    return proc.cache_base(CACHE_ENV) / f"kafka-{kafka_version(pom)}" / "libs"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _is_complete(libs: Path, digest: str) -> bool:
    marker = libs / _MARKER
    try:
        return marker.read_text(encoding="utf-8").strip() == digest and any(libs.glob("*.jar"))
    except OSError:
        return False


def _run_maven(pom: Path, output_dir: Path) -> None:
    mvn = find_executable("mvn")
    cmd = [
        mvn,
        "-q",
        "-B",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
        "-f",
        str(pom),
    ]
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DevstackError(f"mvn did not finish within {_MAVEN_TIMEOUT_S:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise DevstackError(
            f"mvn dependency:copy-dependencies failed (exit {proc.returncode}):\n{tail}"
        )
    if not any(output_dir.glob("*.jar")):
        raise DevstackError(f"mvn succeeded but copied no jars into {output_dir}")


def ensure_kafka_libs(pom: Path = POM_PATH) -> Path:
    """Make sure the broker's jars are cached and return the directory that holds them.

    The first call runs Maven (tens of seconds with an empty ``~/.m2``); later calls with an
    unchanged pom return at once. Safe to call from several processes at the same time: they
    serialise on a lock file beside the cache.
    """
    pom = pom.resolve()
    libs = libs_dir(pom)
    digest = _pom_digest(pom)
    if _is_complete(libs, digest):
        return libs

    root = libs.parent
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(libs, digest):  # another process filled it while we waited
            return libs
        staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=root))
        try:
            _run_maven(pom, staging)
            (staging / _MARKER).write_text(digest + "\n", encoding="utf-8")
            if libs.exists():  # stale: fetched from another pom
                retired = Path(tempfile.mkdtemp(prefix=".old-libs-", dir=root))
                libs.rename(retired / "libs")
                shutil.rmtree(retired, ignore_errors=True)
            staging.rename(libs)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return libs
