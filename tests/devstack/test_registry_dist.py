"""Fetching Apicurio Registry's distribution: one Maven run, a pinned digest, atomic fills."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from devstack.proc import DevstackError
from devstack.registry import dist
from devstack.registry.dist import dist_dir, ensure_registry_dist, runner_jar


def _archive(tmp_path: Path, *, with_jar: bool = True) -> bytes:
    """A small stand-in for the distribution: the runner jar and one lib."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = {"lib/dep.jar": b"dep"}
        if with_jar:
            members[runner_jar(Path()).name] = b"runner"
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache base of the test's own."""
    monkeypatch.setenv(dist.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_maven(monkeypatch: pytest.MonkeyPatch, archive: bytes, *, pin: bool = True) -> list[Path]:
    """Replace Maven by a copy of ``archive``; pin its digest unless told not to."""
    runs: list[Path] = []

    def fetch(dest: Path) -> None:
        runs.append(dest)
        dest.write_bytes(archive)

    monkeypatch.setattr(dist, "_run_maven", fetch)
    if pin:
        monkeypatch.setattr(dist, "ARCHIVE_SHA256", hashlib.sha256(archive).hexdigest())
    return runs


def test_the_cache_follows_the_env_and_the_version(cache: Path) -> None:
    assert dist_dir() == (cache / "apicurio-registry-3.0.9" / "app").resolve()


def test_one_fetch_then_the_cache_is_reused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _fake_maven(monkeypatch, _archive(tmp_path))
    app = ensure_registry_dist()
    assert runner_jar(app).read_bytes() == b"runner"
    assert (app / "lib" / "dep.jar").is_file()
    assert not (app / "archive.tar.gz").exists()  # the archive is not kept twice
    assert ensure_registry_dist() == app
    assert len(runs) == 1
    assert sorted(os.listdir(app.parent)) == [".lock", "app"]


def test_an_archive_with_another_digest_is_not_unpacked(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_maven(monkeypatch, _archive(tmp_path), pin=False)
    with pytest.raises(DevstackError, match=r"has SHA-256 [0-9a-f]{64}, expected 2b28181501a2"):
        ensure_registry_dist()
    assert sorted(os.listdir(dist_dir().parent)) == [".lock"]  # no half-filled cache


def test_an_archive_without_the_runner_jar_is_refused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_maven(monkeypatch, _archive(tmp_path, with_jar=False))
    with pytest.raises(DevstackError, match=r"holds no apicurio-registry-app-3\.0\.9-runner\.jar"):
        ensure_registry_dist()
    assert not dist_dir().exists()


def test_a_missing_maven_is_named(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(cache / "empty-bin"))
    with pytest.raises(
        DevstackError, match="'mvn' not found on PATH; install it to fetch Apicurio"
    ):
        ensure_registry_dist()


@pytest.mark.schema_registry
def test_the_real_distribution_is_cached_with_its_digest() -> None:
    app = ensure_registry_dist()  # fetches on a machine that never did (about 10 s)
    assert (app / ".archive-sha256").read_text().strip() == dist.ARCHIVE_SHA256
    assert runner_jar(app).is_file()
    assert len(list((app / "lib").glob("*.jar"))) > 300
