"""How input events are read, from the settings: the decoder and the event mapping.

INPUT_FORMAT=json without EVENT_MAPPING_FILE reads the contract's events as always (no reader:
the loop's own JSON path). Otherwise a MappedReader: the decoder of the format (plain JSON,
or the Schema Registry's Avro, Protobuf or JSON Schema) and the mapping from the file, or,
for a registry format without a file, the contract's event shape as a mapping. The file is
YAML, or JSON when its name ends in `.json`; every problem in it is one line naming the file
and the entry (`invalid configuration: EVENT_MAPPING_FILE mapping.yaml: properties.x: ...`).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from service.adapters.logs import REDACT
from service.adapters.schema_registry import (
    RegistryConfig,
    RegistryDecoder,
    RegistryFormat,
    registry_client,
)
from service.core.codec import ValidationLimits
from service.core.errors import ConfigError
from service.core.mapping.apply import MappedReader
from service.core.mapping.document import CONTRACT_DOCUMENT, MappingSpecError, read_mapping
from service.core.mapping.json_input import JsonDecoder
from service.core.mapping.spec import EventMapping
from service.core.ports import EventDecoder
from service.entry.input_settings import InputFormat
from service.entry.settings import Settings

_SETTING = "EVENT_MAPPING_FILE"
_REGISTRY_FORMATS: dict[InputFormat, RegistryFormat] = {
    InputFormat.AVRO: "avro",
    InputFormat.PROTOBUF: "protobuf",
    InputFormat.JSON_SCHEMA: "json_schema",
}


def event_mapping(settings: Settings) -> EventMapping | None:
    """The mapping in use: the file's, the contract's for a registry format, else None."""
    path = settings.event_mapping_file
    if path is not None:
        return load_mapping(path)
    if settings.input_format is InputFormat.JSON:
        return None
    return read_mapping(CONTRACT_DOCUMENT)


def load_mapping(path: Path) -> EventMapping:
    """The checked mapping in `path`, or a ConfigError with one line per problem."""
    document = _parsed(path, _text(path))
    try:
        return read_mapping(document)
    except MappingSpecError as exc:
        lines = [f"invalid configuration: {_SETTING} {path}: {problem}" for problem in exc.problems]
        raise ConfigError("\n".join(lines)) from None


def event_reader(settings: Settings, limits: ValidationLimits) -> MappedReader | None:
    """The reader of the settings' input, or None for the contract's JSON events."""
    mapping = event_mapping(settings)
    if mapping is None:
        return None
    return MappedReader(_decoder(settings), mapping, limits)


def _decoder(settings: Settings) -> EventDecoder:
    if settings.input_format is InputFormat.JSON:
        return JsonDecoder()
    assert settings.schema_registry_url is not None  # the settings require it
    user_info, token = (
        settings.schema_registry_basic_auth_user_info,
        settings.schema_registry_bearer_token,
    )
    for secret in (user_info, token):
        if secret is not None:  # kept out of every log line, whatever logs it
            REDACT.add(secret.get_secret_value())
    config = RegistryConfig(
        url=settings.schema_registry_url,
        basic_auth_user_info=user_info.get_secret_value() if user_info else None,
        bearer_token=token.get_secret_value() if token else None,
        ca_bundle=str(settings.schema_registry_ca_bundle)
        if settings.schema_registry_ca_bundle
        else None,
        timeout_s=settings.schema_registry_timeout_s,
    )
    return RegistryDecoder(registry_client(config), _REGISTRY_FORMATS[settings.input_format])


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"invalid configuration: {_SETTING} {path}: cannot be read ({exc.__class__.__name__})"
        ) from None


def _parsed(path: Path, text: str) -> object:
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError(_unparsable(path, "JSON", where, exc.msg)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(_unparsable(path, "YAML", where, str(problem))) from None


def _unparsable(path: Path, language: str, where: str, problem: str) -> str:
    return f"invalid configuration: {_SETTING} {path}: not valid {language} ({where}: {problem})"
