"""Fetch and cache Apicurio Registry's runnable distribution with Maven.

Maven Central carries ``io.apicurio:apicurio-registry-app:<version>:tar.gz:all`` (a Quarkus
``runner.jar`` plus ``lib/``). Its parent POM is not on Maven Central, so an ordinary
dependency does not resolve; the dependency plugin's ``get`` goal (version 2.8, which still
takes ``dest``) fetches the archive alone, with strict checksums. The archive's SHA-256 is
pinned here and checked before it is unpacked into a cache outside the repository
(``~/.cache/subscription-upserter/apicurio-registry-<version>/app`` unless
``UPSERTER_REGISTRY_CACHE`` names another base directory).

The cache is filled atomically, like the Kafka jars: the archive is unpacked into a temporary
sibling that is renamed into place once complete, with a marker holding the archive's digest.
A later call finds the marker and returns at once, without Maven.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from devstack.proc import DevstackError, cache_base, find_executable

__all__ = [
    "APICURIO_VERSION",
    "ARCHIVE_SHA256",
    "CACHE_ENV",
    "dist_dir",
    "ensure_registry_dist",
    "runner_jar",
]

APICURIO_VERSION = "3.0.9"
"""The last 3.x release that runs on Java 17 (later ones need Java 21)."""

ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
ARCHIVE_SHA256 = "2b28181501a20cbf6efcd77f9b7153908fc01f3d3a7c32024c0bd9e1b04c8a43"
"""SHA-256 of ``apicurio-registry-app-3.0.9-all.tar.gz`` as Maven Central serves it."""

CACHE_ENV = "UPSERTER_REGISTRY_CACHE"
"""Environment variable naming the cache base (default ``~/.cache/subscription-upserter``)."""

_MARKER = ".archive-sha256"
_MAVEN_TIMEOUT_S = 900.0
_NEEDED_FOR = "fetch Apicurio Registry (the local Schema Registry)"


def dist_dir() -> Path:
    """Where the unpacked distribution lives (whether or not it was fetched yet)."""
    return cache_base(CACHE_ENV) / f"apicurio-registry-{APICURIO_VERSION}" / "app"


def runner_jar(app: Path) -> Path:
    """The Quarkus runner jar inside an unpacked distribution."""
    return app / f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"


def _is_complete(app: Path) -> bool:
    try:
        marker = (app / _MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return marker == ARCHIVE_SHA256 and runner_jar(app).is_file()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_maven(dest: Path) -> None:
    """Fetch the archive into ``dest`` (through the local Maven repository)."""
    cmd = [
        find_executable("mvn", needed_for=_NEEDED_FOR),
        "-B",
        "-q",
        "-C",  # strict checksums: a corrupt download fails instead of warning
        "org.apache.maven.plugins:maven-dependency-plugin:2.8:get",
        f"-Dartifact={ARTIFACT}",
        "-Dtransitive=false",
        f"-Ddest={dest}",
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
            f"mvn dependency:get {ARTIFACT} failed (exit {proc.returncode}):\n{tail}"
        )
    if not dest.is_file():
        raise DevstackError(f"mvn succeeded but wrote no {dest.name}")


def _unpack(archive: Path, into: Path) -> None:
    actual = _sha256(archive)
    if actual != ARCHIVE_SHA256:
        raise DevstackError(
            f"{ARTIFACT} has SHA-256 {actual}, expected {ARCHIVE_SHA256}: not unpacking it"
        )
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    if not runner_jar(into).is_file():
        raise DevstackError(f"{ARTIFACT} holds no {runner_jar(into).name}")
    (into / _MARKER).write_text(ARCHIVE_SHA256 + "\n", encoding="utf-8")


def ensure_registry_dist() -> Path:
    """Make sure the distribution is unpacked in the cache; return its directory.

    The first call runs Maven (about 10 s for the 108 MB archive on a good link, plus the
    plugin's own download on an empty ``~/.m2``) and unpacks the archive (about 115 MB); later
    calls return at once. Safe from several processes at the same time: they serialise on a
    lock file beside the cache.
    """
    app = dist_dir()
    if _is_complete(app):
        return app
    root = app.parent
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _is_complete(app):  # another process filled it while we waited
            return app
        staging = Path(tempfile.mkdtemp(prefix=".app-", dir=root))
        try:
            archive = staging / "archive.tar.gz"
            _run_maven(archive)
            _unpack(archive, staging)
            archive.unlink()
            if app.exists():  # incomplete or from another archive
                shutil.rmtree(app)
            staging.rename(app)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return app
