"""Fetching and caching the broker's jars: one Maven run, atomic fills, refresh on a new pom."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.kafka import libs
from devstack.kafka.libs import DevstackError, ensure_kafka_libs, kafka_version, libs_dir


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def test_pom_pins_a_kafka_4_broker() -> None:
    assert kafka_version().startswith("4.")


@pytest.mark.kafka
def test_second_call_reuses_the_cache_without_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_kafka_libs()  # fetches if this machine never did
    names = {p.name for p in first.glob("*.jar")}
    assert f"kafka_2.13-{kafka_version()}.jar" in names
    assert any(n.startswith("log4j-slf4j2-impl-") for n in names)
    before = _snapshot(first)
    before_dir_mtime = first.stat().st_mtime_ns

    def no_maven(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"Maven ran again: {args}")

    monkeypatch.setattr(libs, "_run_maven", no_maven)
    monkeypatch.setattr(subprocess, "run", no_maven)
    assert ensure_kafka_libs() == first
    assert _snapshot(first) == before
    assert first.stat().st_mtime_ns == before_dir_mtime


def _fake_pom(tmp_path: Path, body: str = "") -> Path:
    pom = tmp_path / "pom.xml"
    pom.write_text(f"<project><kafka.version>9.9.9</kafka.version>{body}</project>")
    return pom


def test_cache_location_follows_the_env_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSERTER_KAFKA_CACHE", str(tmp_path / "cache"))
    pom = _fake_pom(tmp_path)
    assert libs_dir(pom) == (tmp_path / "cache" / "kafka-9.9.9" / "libs").resolve()
    monkeypatch.delenv("UPSERTER_KAFKA_CACHE")
    expected = Path.home() / ".cache" / "subscription-upserter" / "kafka-9.9.9" / "libs"
    assert libs_dir(pom) == expected.resolve()


def test_failed_fetch_leaves_no_half_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSERTER_KAFKA_CACHE", str(tmp_path / "cache"))
    pom = _fake_pom(tmp_path)

    def half_then_crash(pom_path: Path, output_dir: Path) -> None:
        (output_dir / "half.jar").write_bytes(b"partial")
        raise DevstackError("network went away")

    monkeypatch.setattr(libs, "_run_maven", half_then_crash)
    with pytest.raises(DevstackError, match="network went away"):
        ensure_kafka_libs(pom)
    root = tmp_path / "cache" / "kafka-9.9.9"
    assert not (root / "libs").exists()
    assert [p.name for p in root.iterdir()] == [".lock"]


def test_changed_pom_refreshes_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSERTER_KAFKA_CACHE", str(tmp_path / "cache"))
    runs: list[Path] = []

    def fake_maven(pom_path: Path, output_dir: Path) -> None:
        runs.append(output_dir)
        (output_dir / f"dep-{len(runs)}.jar").write_bytes(b"jar")

    monkeypatch.setattr(libs, "_run_maven", fake_maven)
    pom = _fake_pom(tmp_path)
    first = ensure_kafka_libs(pom)
    assert ensure_kafka_libs(pom) == first
    assert len(runs) == 1

    _fake_pom(tmp_path, "<!-- another dependency -->")
    assert ensure_kafka_libs(pom) == first
    assert len(runs) == 2
    assert sorted(p.name for p in first.glob("*.jar")) == ["dep-2.jar"]
    assert sorted(os.listdir(first.parent)) == [".lock", "libs"]


def test_missing_maven_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSERTER_KAFKA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(DevstackError, match="'mvn' not found"):
        ensure_kafka_libs(_fake_pom(tmp_path))
