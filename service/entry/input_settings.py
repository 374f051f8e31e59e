"""The settings of the input: its format, the Schema Registry and the event mapping file.

Part of the service's settings (service/entry/settings.py, whose Settings extends this one):
INPUT_FORMAT (`json`, the contract's events; or `avro`, `protobuf`, `json_schema` in the
Confluent wire format), SCHEMA_REGISTRY_URL (required for those; one URL or several, comma
separated, without credentials), its basic-auth user info or bearer token (secrets), CA
bundle and request timeout, and EVENT_MAPPING_FILE. Validation only; the mapping file's
content is read by service/entry/event_input.py.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings


class InputFormat(StrEnum):
    """How input events are written: the contract's JSON, or a Schema Registry format."""

    JSON = "json"
    AVRO = "avro"
    PROTOBUF = "protobuf"
    JSON_SCHEMA = "json_schema"


class InputSettings(BaseSettings):
    """The input's settings (field names are the environment variables, lower-cased)."""

    input_format: InputFormat = InputFormat.JSON
    schema_registry_url: str | None = None
    schema_registry_basic_auth_user_info: SecretStr | None = None
    schema_registry_bearer_token: SecretStr | None = None
    schema_registry_ca_bundle: Path | None = None
    schema_registry_timeout_s: float = Field(default=5.0, gt=0, le=60)
    event_mapping_file: Path | None = None

    @field_validator("input_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_urls(cls, value: str | None) -> str | None:
        """One URL or several, comma-separated (the client tries each in turn); credentials
        go in their own secret settings, never in the URL (it is printed and logged)."""
        if value is None or not value.strip():
            return None
        urls = [url.strip().rstrip("/") for url in value.split(",")]
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError("each URL must start with http:// or https://")
            if "@" in url.split("//", 1)[1].split("/", 1)[0]:
                raise ValueError(
                    "must not hold credentials; set SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"
                )
        return ",".join(urls)

    @field_validator("schema_registry_basic_auth_user_info")
    @classmethod
    def _user_and_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("must be USER:PASSWORD")
        return value

    @field_validator("schema_registry_bearer_token")
    @classmethod
    def _one_registry_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        problem = token_problem(token)
        if problem:
            raise ValueError(problem)
        return SecretStr(token) if token else None

    @model_validator(mode="after")
    def _registry_when_needed(self) -> Self:
        if self.input_format is InputFormat.JSON:
            return self
        if self.schema_registry_url is None:
            raise ValueError(
                f"SCHEMA_REGISTRY_URL is required with INPUT_FORMAT={self.input_format.value}"
            )
        if self.schema_registry_basic_auth_user_info and self.schema_registry_bearer_token:
            raise ValueError(
                "set SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO or SCHEMA_REGISTRY_BEARER_TOKEN, not both"
            )
        return self


def token_problem(token: str) -> str | None:
    """Why `token` cannot be sent as one bearer token (None: it can)."""
    if any(char.isspace() or not char.isprintable() for char in token):
        return "must be one token, without spaces or line breaks inside"
    return None
