"""The service's settings, read from environment variables with pydantic-settings.

Owns names, defaults and validation of every setting; reads nothing itself (the
composition root calls `load_settings`, then `check_files` for the files settings name).
A bad value becomes a ConfigError whose message is one line naming the variable; secret
values never appear in it.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict, SettingsError

from service.core.errors import ConfigError
from service.entry.input_settings import InputSettings, token_problem
from service.loop.associator import MissingTargetPolicy
from service.loop.caller import InvalidPropertyPolicy

SECRET_FIELDS = frozenset(
    {
        "hubspot_access_token",
        "hubspot_client_secret",
        "hubspot_refresh_token",
        "kafka_sasl_password",
        "kafka_ssl_key_password",
        "kafka_extra_config",  # may hold OAUTHBEARER client secrets or SASL passwords
        "schema_registry_basic_auth_user_info",
        "schema_registry_bearer_token",
    }
)
# Not secrets, but a bad value may hold one (credentials pasted into the registry's URL): a
# problem with them does not repeat the value.
_NOT_ECHOED = frozenset({"schema_registry_url"})
# librdkafka settings the service sets itself, and that its guarantees rest on (manual
# commits after delivery, read_committed input, idempotent acks=all output, its group,
# transactional id and rebalance protocol): KAFKA_EXTRA_CONFIG may not set them.
KAFKA_KEYS_THE_SERVICE_SETS = frozenset(
    {
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "isolation.level",
        "partition.assignment.strategy",
        "enable.idempotence",
        "acks",
        "request.required.acks",  # librdkafka's alias of acks
        "auto.commit.enable",  # librdkafka's old alias of enable.auto.commit
        "transactional.id",
        "statistics.interval.ms",  # the lag metric, and the alerts on it, come from these
        "logger",  # the client's messages go through the service's JSON logging
    }
)


class DeliveryGuarantee(StrEnum):
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class KafkaSecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"
    OAUTHBEARER = "OAUTHBEARER"
    GSSAPI = "GSSAPI"


NonEmpty = Annotated[str, Field(min_length=1)]
ObjectType = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
ApiVersion = Annotated[str, Field(pattern=r"^(v[0-9]+|[0-9]{4}-[0-9]{2}(-[0-9]{2})?)$")]


class Settings(InputSettings):
    """Every setting; field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    kafka_bootstrap_servers: NonEmpty
    kafka_input_topic: NonEmpty = "subscription-events"
    kafka_output_topic: NonEmpty = "subscription-upsert-results"
    kafka_dlq_topic: NonEmpty = "subscription-events-dlq"
    kafka_group_id: NonEmpty = "subscription-upserter"

    kafka_security_protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_extra_config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    kafka_transactional_id: str | None = None
    kafka_commit_metadata_max_bytes: int = Field(default=4_096, ge=0, le=1_048_576)

    hubspot_base_url: NonEmpty = "https://api.hubapi.com"
    hubspot_access_token: SecretStr | None = None
    hubspot_access_token_file: Path | None = None
    hubspot_client_id: str | None = None
    hubspot_oauth_token_url: str | None = None
    hubspot_client_secret: SecretStr | None = None
    hubspot_refresh_token: SecretStr | None = None
    hubspot_object_type: ObjectType = "subscriptions"
    hubspot_id_property: NonEmpty
    hubspot_api_version: ApiVersion = "v3"
    hubspot_timeout_s: float = Field(default=30.0, gt=0, le=600)
    hubspot_retry_backoff_ms: int = Field(default=1_000, ge=1, le=600_000)
    hubspot_retry_max_backoff_ms: int = Field(default=30_000, ge=1, le=3_600_000)

    hubspot_rate_limit_requests: int = Field(default=190, ge=1, le=100_000)
    hubspot_rate_limit_interval_ms: int = Field(default=10_000, ge=100, le=86_400_000)
    hubspot_ca_bundle: Path | None = None
    hubspot_daily_reset_timezone: NonEmpty = "UTC"
    hubspot_daily_probe_interval_s: float = Field(default=300.0, ge=1, le=86_400)
    hubspot_auth_retry_s: float = Field(default=15.0, ge=0.1, le=3_600)
    hubspot_oauth_refresh_margin_s: float = Field(default=300.0, ge=1, le=1_700)

    hubspot_transient_max_attempts: int = Field(default=10, ge=1, le=1_000)
    hubspot_transient_max_s: float = Field(default=300.0, ge=0, le=86_400)
    on_invalid_property: InvalidPropertyPolicy = InvalidPropertyPolicy.FAIL
    association_missing_target: MissingTargetPolicy = MissingTargetPolicy.FAIL
    association_retry_s: float = Field(default=300.0, ge=0, le=86_400)
    association_cache_max: int = Field(default=100_000, ge=0, le=10_000_000)
    association_cache_ttl_s: float = Field(default=3_600.0, ge=0, le=604_800)

    skip_unchanged: bool = False
    # About 530 bytes of RSS per id with 20 properties (python -m bench.skip_memory): 80 MB.
    skip_unchanged_max_ids: int = Field(default=150_000, ge=1, le=100_000_000)
    skip_unchanged_ttl_s: float = Field(default=86_400.0, gt=0, le=30 * 86_400)

    batch_max_size: int = Field(default=100, ge=1, le=100)
    batch_max_wait_ms: int = Field(default=1_000, ge=0, le=600_000)
    batch_max_bytes: int = Field(default=4_000_000, ge=10_000, le=100_000_000)
    event_max_properties: int = Field(default=1_000, ge=1, le=100_000)
    max_in_flight_batches: int = Field(default=8, ge=1, le=64)

    max_buffered_events: int = Field(default=20_000, ge=100, le=10_000_000)
    max_buffered_bytes: int = Field(default=64 * 1024 * 1024, ge=1_000_000, le=16 * 1024**3)

    delivery_guarantee: DeliveryGuarantee = DeliveryGuarantee.AT_LEAST_ONCE
    commit_interval_ms: int = Field(default=1_000, ge=10, le=60_000)
    drain_timeout_s: float = Field(default=30.0, gt=0, le=3_600)
    http_host: NonEmpty = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65_535)
    log_level: LogLevel = LogLevel.INFO

    @field_validator("hubspot_base_url", "hubspot_oauth_token_url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("hubspot_access_token")
    @classmethod
    def _one_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Surrounding whitespace (a secret written with a trailing newline) is dropped; a
        token with spaces or line breaks inside would make every request fail."""
        if value is None:
            return None
        token = value.get_secret_value().strip()
        problem = token_problem(token)
        if problem:
            raise ValueError(problem)
        return SecretStr(token) if token else None

    @model_validator(mode="after")
    def _backoff_cap_above_base(self) -> Self:
        if self.hubspot_retry_max_backoff_ms < self.hubspot_retry_backoff_ms:
            raise ValueError(
                "HUBSPOT_RETRY_MAX_BACKOFF_MS must be at least HUBSPOT_RETRY_BACKOFF_MS"
            )
        return self

    @field_validator("hubspot_daily_reset_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone (e.g. UTC, America/New_York)") from None
        return value

    @field_validator("kafka_extra_config")
    @classmethod
    def _no_key_the_service_sets(
        cls, value: dict[str, str | int | float | bool]
    ) -> dict[str, str | int | float | bool]:
        owned = sorted(KAFKA_KEYS_THE_SERVICE_SETS.intersection(value))
        if owned:
            raise ValueError(
                f"sets {', '.join(owned)}, which the service sets itself (its delivery "
                "guarantees rest on them); use the dedicated setting or remove it"
            )
        callbacks = sorted(key for key in value if key.endswith("_cb") or key == "on_delivery")
        if callbacks:
            raise ValueError(
                f"sets {', '.join(callbacks)}: a callback, which cannot come from the environment"
            )
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_protocol(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        if not self.kafka_security_protocol.startswith("SASL"):
            return self
        if self.kafka_sasl_mechanism is None:
            raise ValueError("KAFKA_SASL_MECHANISM is required with a SASL security protocol")
        needs_password = self.kafka_sasl_mechanism.value.startswith(("PLAIN", "SCRAM"))
        has_password = self.kafka_sasl_password or self.kafka_sasl_password_file
        if needs_password and not (self.kafka_sasl_username and has_password):
            raise ValueError(
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) "
                f"are required with {self.kafka_sasl_mechanism.value}"
            )
        return self

    def kafka_client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by the consumer and the producer (secrets included)."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol.value,
        }
        optional = {
            "sasl.mechanism": self.kafka_sasl_mechanism.value
            if self.kafka_sasl_mechanism
            else None,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self._sasl_password(),
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
            "ssl.key.password": _secret(self.kafka_ssl_key_password),
        }
        config.update({key: str(value) for key, value in optional.items() if value is not None})
        config.update(self.kafka_extra_config)
        return config

    def _sasl_password(self) -> str | None:
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text(encoding="utf-8").strip()
        return None

    @field_validator("on_invalid_property", "association_missing_target", mode="before")
    @classmethod
    def _lower_policy(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _credentials_given(self) -> Self:
        oauth = (self.hubspot_client_id, self.hubspot_client_secret, self.hubspot_refresh_token)
        if self.hubspot_access_token or self.hubspot_access_token_file or all(oauth):
            return self
        raise ValueError(
            "HUBSPOT_ACCESS_TOKEN is required (or HUBSPOT_ACCESS_TOKEN_FILE, or all of "
            "HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and HUBSPOT_REFRESH_TOKEN)"
        )

    @property
    def upsert_path(self) -> str:
        """`/crm/v3/objects/{type}/batch/upsert`, or the date-versioned form."""
        version, object_type = self.hubspot_api_version, self.hubspot_object_type
        if version.startswith("v"):
            return f"/crm/{version}/objects/{object_type}/batch/upsert"
        return f"/crm/objects/{version}/{object_type}/batch/upsert"


def check_files(settings: Settings) -> None:
    """The files the settings name exist and, for the token file, hold one token: checked by
    every command, `check-config` too, but not while parsing (tests check the settings a
    chart renders away from the pod its files are mounted in)."""
    files = {
        "HUBSPOT_ACCESS_TOKEN_FILE": settings.hubspot_access_token_file,
        "HUBSPOT_CA_BUNDLE": settings.hubspot_ca_bundle,
        "KAFKA_SASL_PASSWORD_FILE": settings.kafka_sasl_password_file,
        "KAFKA_SSL_CA_LOCATION": settings.kafka_ssl_ca_location,
        "KAFKA_SSL_CERTIFICATE_LOCATION": settings.kafka_ssl_certificate_location,
        "KAFKA_SSL_KEY_LOCATION": settings.kafka_ssl_key_location,
        "SCHEMA_REGISTRY_CA_BUNDLE": settings.schema_registry_ca_bundle,
        "EVENT_MAPPING_FILE": settings.event_mapping_file,
    }
    for name, path in files.items():
        if path is not None and not path.is_file():
            raise ConfigError(f"invalid configuration: {name}: {str(path)!r} is not a file")
    problems = {
        "HUBSPOT_ACCESS_TOKEN_FILE": _token_file_problem(settings.hubspot_access_token_file),
        "KAFKA_SASL_PASSWORD_FILE": _password_file_problem(settings.kafka_sasl_password_file),
        "HUBSPOT_CA_BUNDLE": _ca_bundle_problem(settings.hubspot_ca_bundle),
        "SCHEMA_REGISTRY_CA_BUNDLE": _ca_bundle_problem(settings.schema_registry_ca_bundle),
    }
    for name, problem in problems.items():
        if problem:
            raise ConfigError(f"invalid configuration: {name}: {problem}")


def _password_file_problem(path: Path | None) -> str | None:
    return None if path is None else _read(path)[1]


def _read(path: Path) -> tuple[str, None] | tuple[None, str]:
    """The file's text, or why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8"), None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{str(path)!r} cannot be read ({exc.__class__.__name__})"


def _ca_bundle_problem(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        return f"{str(path)!r} holds no usable PEM certificates ({exc.__class__.__name__})"
    return None


def _token_file_problem(path: Path | None) -> str | None:
    if path is None:
        return None
    text, problem = _read(path)
    if text is None:
        return problem
    token = text.strip()
    if not token:
        return f"{str(path)!r} is empty"
    return token_problem(token)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_settings() -> Settings:
    """Settings from the process environment, or a one-line ConfigError."""
    try:
        return Settings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except SettingsError as exc:  # a value that should be JSON is not
        raise ConfigError(_unparsable(exc)) from None


def _unparsable(exc: SettingsError) -> str:
    field = re.search(r'field "(\w+)"', str(exc))
    name = field.group(1).upper() if field else "a setting"
    return f"invalid configuration: {name}: is not valid JSON (expected a JSON object)"


def _one_line(exc: ValidationError) -> str:
    problems: list[str] = []
    for error in exc.errors():
        problem = _problem(error["loc"], error["msg"].removeprefix("Value error, "), error)
        if problem not in problems:  # a bad value in a map fails each allowed type once
            problems.append(problem)
    return "invalid configuration: " + "; ".join(problems)


def _problem(loc: tuple[int | str, ...], message: str, error: Mapping[str, object]) -> str:
    if not loc:
        return message
    name = str(loc[0])
    if len(loc) > 1 and name == "kafka_extra_config":
        return f"KAFKA_EXTRA_CONFIG: `{loc[1]}` must be a string, number or boolean"
    secret = name in SECRET_FIELDS or name in _NOT_ECHOED
    shown = "" if secret or "input" not in error else _shown(error["input"])
    field = ".".join(str(part) for part in loc)
    return f"{field.upper()}: {message}{shown}"


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return ""
    text = str(value)
    return f" (got {text[:80]!r})"
