"""EmulatorConfig: defaults, JSON files, patches, and the CLI flags that build one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.emulator import ConfigError, EmulatorConfig, load_config
from devstack.emulator.__main__ import build_config, parse_args

EXAMPLE = Path(__file__).resolve().parents[2] / "devstack" / "emulator" / "example-config.json"


def test_defaults_mimic_a_professional_private_app() -> None:
    cfg = EmulatorConfig()

    assert cfg.host == "127.0.0.1"
    assert cfg.object_types == {"subscriptions"}
    assert cfg.object_type_id("subscriptions") == "0-69"
    assert (cfg.rate_limit_max, cfg.rate_limit_interval_ms, cfg.daily_limit) == (190, 10_000, None)
    assert cfg.unique_id_properties == {"external_subscription_id"}
    assert cfg.required_to_create == {"hs_name"}
    assert {"hs_name", "hs_status", "external_subscription_id"} <= cfg.schema_properties
    assert "hs_object_id" in cfg.read_only_properties
    assert (cfg.max_inputs, cfg.max_value_length) == (100, 65_536)
    assert cfg.echo_trace_id and not cfg.shuffle_results and not cfg.retry_after_on_429


def test_config_file_is_json_of_field_names(tmp_path: Path) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"tokens": ["a", "b"], "daily_limit": 10, "latency_ms": 5}))
    cfg = load_config(path)

    assert cfg.tokens == {"a", "b"}
    assert cfg.daily_limit == 10
    assert cfg.latency_ms == 5


def test_shipped_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)

    assert cfg.fault_rates["503"] == 0.01
    assert cfg.shuffle_results


@pytest.mark.parametrize(
    "content",
    [
        "{broken",
        "[1]",
        '{"tokenz": ["a"]}',
        '{"daily_reset_at": "tomorrow"}',
        '{"daily_reset_at": "2026-11-08T00:00:00"}',
        '{"fault_when": "sometimes"}',
    ],
)
def test_bad_config_files_raise_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)

    with pytest.raises(ConfigError):
        load_config(path)


def test_patch_replaces_only_named_fields_and_round_trips() -> None:
    cfg = EmulatorConfig(latency_ms=10).patched({"jitter_ms": 3, "tokens": ["x"]})

    assert (cfg.latency_ms, cfg.jitter_ms) == (10, 3)
    assert cfg.tokens == {"x"}
    assert EmulatorConfig().patched(cfg.to_dict()) == cfg


def test_cli_flags_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"latency_ms": 999, "daily_limit": 7}))
    ns = parse_args(
        [
            "--config",
            str(path),
            "--port",
            "0",
            "--token",
            "t1",
            "--token",
            "t2",
            "--rate-limit",
            "100/5000",
            "--latency-ms",
            "150",
            "--jitter-ms",
            "50",
            "--shuffle-results",
            "--fault",
            "503=0.1",
            "--fault",
            "drop=0.05",
            "--retry-after",
        ]
    )
    cfg = build_config(ns)

    assert cfg.tokens == {"t1", "t2"}
    assert (cfg.rate_limit_max, cfg.rate_limit_interval_ms) == (100, 5000)
    assert (cfg.latency_ms, cfg.jitter_ms, cfg.daily_limit) == (150, 50, 7)
    assert cfg.shuffle_results and cfg.retry_after_on_429
    assert cfg.fault_rates == {"503": 0.1, "drop": 0.05}


def test_cli_accepts_unlimited_limits() -> None:
    cfg = build_config(parse_args(["--rate-limit", "unlimited", "--daily-limit", "unlimited"]))

    assert cfg.rate_limit_max is None
    assert cfg.daily_limit is None


def test_cli_daily_limit_number() -> None:
    assert build_config(parse_args(["--daily-limit", "250000"])).daily_limit == 250_000
