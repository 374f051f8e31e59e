"""Building Jaeger: how Go is called, the cache filled atomically and reused; and the config
that keeps every port on loopback."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from devstack.jaeger import JAEGER_VERSION, binary_path, ensure_jaeger
from devstack.jaeger.config import JaegerPorts, jaeger_config, render_config
from devstack.proc import DevstackError

# A stand-in for `go`: `mod download -json` names a module directory, `build -o OUT` writes a
# binary there that prints the version it was given ($FAKE_VERSION), or fails ($FAKE_FAIL).
# Every call is recorded as one JSON line: the working directory and the arguments.
_FAKE_GO = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import json, os, sys
    with open(os.environ["FAKE_GO_CALLS"], "a") as calls:
        calls.write(json.dumps({"cwd": os.getcwd(), "args": sys.argv[1:]}) + "\\n")
    if sys.argv[1] == "mod":
        print(json.dumps({"Dir": os.environ["FAKE_GO_MODULE"]}))
    elif os.environ.get("FAKE_FAIL"):
        print("cmd/jaeger/main.go:1: something went wrong", file=sys.stderr)
        sys.exit(1)
    else:
        out = sys.argv[sys.argv.index("-o") + 1]
        version = json.dumps({"gitVersion": os.environ["FAKE_VERSION"]})
        with open(out, "w") as binary:
            binary.write("#!/bin/sh\\necho '%s'\\n" % version)
        os.chmod(out, 0o755)
    """
)


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the stand-in `go` first on PATH, with an empty cache; return its call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(_FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    (tmp_path / "module").mkdir()
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("GOROOT", raising=False)
    monkeypatch.setenv("FAKE_GO_CALLS", str(calls))
    monkeypatch.setenv("FAKE_GO_MODULE", str(tmp_path / "module"))
    monkeypatch.setenv("FAKE_VERSION", JAEGER_VERSION)
    monkeypatch.setenv("UPSERTER_JAEGER_CACHE", str(tmp_path / "cache"))
    return calls


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_module_is_downloaded_then_built_in_its_own_directory(
    fake_go: Path, tmp_path: Path
) -> None:
    binary = ensure_jaeger()

    assert binary == (tmp_path / "cache" / "jaeger-1.75.0" / "bin" / "jaeger").resolve()
    assert os.access(binary, os.X_OK)
    download, build = _calls(fake_go)
    assert download["args"] == [
        "mod",
        "download",
        "-json",
        "github.com/jaegertracing/jaeger@v1.75.0",
    ]
    assert build["cwd"] == str(tmp_path / "module")  # the main module: its replace applies
    args = build["args"]
    assert isinstance(args, list)
    assert args[:3] == ["build", "-mod=readonly", "-trimpath"]
    assert args[-1] == "./cmd/jaeger"
    assert "github.com/jaegertracing/jaeger/internal/version.latestVersion=v1.75.0" in args[4]


def test_a_built_binary_is_reused_without_go(
    fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_jaeger()
    monkeypatch.setenv("PATH", "")
    assert ensure_jaeger() == first
    assert len(_calls(fake_go)) == 2


def test_a_failed_build_leaves_no_binary(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(
        DevstackError, match=r"go build \./cmd/jaeger \(v1\.75\.0\) failed \(exit 1\)"
    ):
        ensure_jaeger()
    assert sorted(os.listdir(binary_path().parent.parent)) == [".lock"]


def test_a_binary_with_another_version_is_refused(
    fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VERSION", "v9.9.9")
    with pytest.raises(DevstackError, match=r"does not report v1\.75\.0"):
        ensure_jaeger()
    assert not binary_path().exists()


_PORTS = JaegerPorts(otlp_grpc=14317, otlp_http=14318, query_http=16686, query_grpc=16685)


def _endpoints(node: object) -> list[str]:
    """Every value under an ``endpoint`` key, anywhere in the configuration."""
    if isinstance(node, dict):
        own = [str(node["endpoint"])] if "endpoint" in node else []
        return own + [found for value in node.values() for found in _endpoints(value)]
    if isinstance(node, list):
        return [found for value in node for found in _endpoints(value)]
    return []


def test_every_endpoint_in_the_config_is_on_loopback() -> None:
    assert sorted(_endpoints(jaeger_config(_PORTS))) == [
        "127.0.0.1:14317",
        "127.0.0.1:14318",
        "127.0.0.1:16685",
        "127.0.0.1:16686",
    ]


def test_the_config_turns_off_what_would_listen_or_send_elsewhere() -> None:
    config = jaeger_config(_PORTS)
    assert config["service"]["telemetry"]["metrics"] == {"level": "none"}  # else :8888
    assert config["extensions"]["jaeger_query"]["enable_tracing"] is False  # else to :4317
    assert config["service"]["extensions"] == ["jaeger_storage", "jaeger_query"]
    assert config["service"]["pipelines"]["traces"] == {
        "receivers": ["otlp"],
        "exporters": ["jaeger_storage_exporter"],
    }


def test_the_rendered_file_is_yaml_with_the_same_content() -> None:
    text = render_config(_PORTS, max_traces=10)
    assert text.startswith("# Written by devstack.jaeger")
    assert yaml.safe_load(text) == jaeger_config(_PORTS, max_traces=10)
