"""Start-up with INPUT_FORMAT, the Schema Registry settings and EVENT_MAPPING_FILE: every bad
value stops it with one clear line per problem (exit 2), secrets never shown; check-config
prints the mapping it loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.core.errors import ConfigError
from service.core.mapping.json_input import JsonDecoder
from service.entry.cli import main
from service.entry.event_input import event_reader, load_mapping
from service.entry.settings import load_settings
from tests.unit.factories import LIMITS
from tests.unit.settings_env import problem, required_env

REGISTRY = {"INPUT_FORMAT": "avro", "SCHEMA_REGISTRY_URL": "http://127.0.0.1:1/apis/ccompat/v7"}
GOOD_MAPPING = "id: subscription_id\nproperties:\n  hs_amount: {path: amount, type: number}\n"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return required_env(monkeypatch)


def exit_lines(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **values: str
) -> list[str]:
    for name, value in values.items():
        env.setenv(name, value)
    assert main(["check-config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.splitlines()


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"INPUT_FORMAT": "xml"},
         "INPUT_FORMAT: Input should be 'json', 'avro', 'protobuf' or 'json_schema' (got 'xml')"),
        ({"INPUT_FORMAT": "protobuf"},
         "invalid configuration: SCHEMA_REGISTRY_URL is required with INPUT_FORMAT=protobuf"),
        ({**REGISTRY, "SCHEMA_REGISTRY_URL": "registry:8081"},
         "SCHEMA_REGISTRY_URL: each URL must start with http:// or https://"),
        ({**REGISTRY, "SCHEMA_REGISTRY_TIMEOUT_S": "0"},
         "SCHEMA_REGISTRY_TIMEOUT_S: Input should be greater than 0"),
        ({**REGISTRY, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "a:b",
          "SCHEMA_REGISTRY_BEARER_TOKEN": "tok"},
         "set SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO or SCHEMA_REGISTRY_BEARER_TOKEN, not both"),
        ({**REGISTRY, "SCHEMA_REGISTRY_CA_BUNDLE": "/no/such/ca.pem"},
         "invalid configuration: SCHEMA_REGISTRY_CA_BUNDLE: '/no/such/ca.pem' is not a file"),
        ({"EVENT_MAPPING_FILE": "/no/such/mapping.yaml"},
         "invalid configuration: EVENT_MAPPING_FILE: '/no/such/mapping.yaml' is not a file"),
    ],
)  # fmt: skip
def test_each_bad_input_setting_is_one_line(
    env: pytest.MonkeyPatch, values: dict[str, str], line: str
) -> None:
    assert line in problem(env, **values)


def test_the_input_format_is_read_in_any_case(env: pytest.MonkeyPatch) -> None:
    env.setenv("INPUT_FORMAT", "JSON_Schema")
    env.setenv("SCHEMA_REGISTRY_URL", "https://a:1/x/, https://b:2")
    settings = load_settings()
    assert settings.input_format.value == "json_schema"
    assert settings.schema_registry_url == "https://a:1/x,https://b:2"


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("SCHEMA_REGISTRY_URL", "http://svc:hunter22@registry:8081",
         "SCHEMA_REGISTRY_URL: must not hold credentials; set SCHEMA_REGISTRY_BASIC_AUTH_"),
        ("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO", "hunter22", "must be USER:PASSWORD"),
        ("SCHEMA_REGISTRY_BEARER_TOKEN", "hunter22 x",
         "must be one token, without spaces or line breaks inside"),
    ],
)  # fmt: skip
def test_a_bad_secret_is_named_but_never_shown(
    env: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    message = problem(env, **{**REGISTRY, name: value})
    assert line in message
    assert "hunter22" not in message


def test_a_ca_bundle_without_certificates_is_one_line(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("nothing here\n")
    message = problem(env, **REGISTRY, SCHEMA_REGISTRY_CA_BUNDLE=str(bundle))
    assert "SCHEMA_REGISTRY_CA_BUNDLE:" in message and "no usable PEM certificates" in message


# -- the mapping file --------------------------------------------------------------------------


def mapping_file(tmp_path: Path, text: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_of_the_mapping_file_is_a_line_naming_the_file_and_the_entry(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = mapping_file(
        tmp_path,
        "id: subscription_id\nproperties:\n  hs_status: {path: status, type: enum}\n"
        "  hs_amount: {path: amount, type: money}\n",
    )
    lines = exit_lines(env, capsys, EVENT_MAPPING_FILE=str(path))
    assert lines == [
        f"error: invalid configuration: EVENT_MAPPING_FILE {path}: properties.hs_status: type "
        "enum needs `values`: a map from the event's symbols to HubSpot's",
        f"error: invalid configuration: EVENT_MAPPING_FILE {path}: properties.hs_amount: "
        "`type` 'money' is not one of string, number, boolean, datetime, date, enum",
    ]


Case = tuple[str, str, str]  # file name, content, what the line says


@pytest.mark.parametrize(
    "case",
    [
        ("m.yaml", "id: x\nproperties: {a: b\n", "not valid YAML (line 3, column 1: expected ','"),
        ("m.yaml", "id: [x\n", "not valid YAML (line 2, column 1:"),
        ("m.json", '{"id": "x", }', "not valid JSON (line 1, column 13: Expecting property name"),
        ("m.yaml", "", "the file holds empty, not a mapping of entries"),
        ("m.yaml", "- id\n", "the file holds a list, not a mapping of entries"),
    ],
)
def test_a_mapping_file_that_does_not_parse_is_one_line(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, case: Case
) -> None:
    name, text, says = case
    path = mapping_file(tmp_path, text, name)
    lines = exit_lines(env, capsys, EVENT_MAPPING_FILE=str(path))
    assert len(lines) == 1
    assert lines[0].startswith(f"error: invalid configuration: EVENT_MAPPING_FILE {path}: ")
    assert says in lines[0]


def test_a_mapping_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"id: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"EVENT_MAPPING_FILE .*: cannot be read \(Unicode"):
        load_mapping(path)


def test_check_config_prints_the_mapping_it_loaded(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = mapping_file(tmp_path, GOOD_MAPPING)
    env.setenv("EVENT_MAPPING_FILE", str(path))
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    settings_part, _, mapping_part = out.partition(f"# the event mapping in use (from {path}):\n")
    assert f"EVENT_MAPPING_FILE={path}" in settings_part
    assert json.loads(mapping_part) == {
        "id": {"path": "subscription_id", "type": "string"},
        "properties": {"hs_amount": {"path": "amount", "type": "number", "on_missing": "omit"}},
    }


def test_check_config_hides_the_registry_secrets(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        **REGISTRY,
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": "svc:hunter22",
    }.items():
        env.setenv(name, value)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=***" in out
    assert "hunter22" not in out
    # a registry format without a file reads the contract's event shape
    assert "# the event mapping in use (from the contract's event shape):" in out


def test_the_readers_the_settings_make(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert event_reader(load_settings(), LIMITS) is None  # the contract's JSON: the old path
    env.setenv("EVENT_MAPPING_FILE", str(mapping_file(tmp_path, GOOD_MAPPING)))
    reader = event_reader(load_settings(), LIMITS)
    assert reader is not None
    assert isinstance(reader._decode.__self__, JsonDecoder)  # type: ignore[attr-defined]
