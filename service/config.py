"""The service's settings, read from environment variables with pydantic-settings.

Owns names, defaults and validation of every setting; reads nothing itself (the
composition root calls `load_settings`). A bad value becomes a ConfigError whose message
is one line naming the variable; secret values never appear in it.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import ConfigError

SECRET_FIELDS = frozenset(
    {"hubspot_access_token", "hubspot_client_secret", "hubspot_refresh_token"}
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


class Settings(BaseSettings):
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

    hubspot_base_url: NonEmpty = "https://api.hubapi.com"
    hubspot_access_token: SecretStr | None = None
    hubspot_access_token_file: Path | None = None
    hubspot_client_id: str | None = None
    hubspot_oauth_token_url: str | None = None
    hubspot_client_secret: SecretStr | None = None
    hubspot_refresh_token: SecretStr | None = None
    hubspot_object_type: NonEmpty = "subscriptions"
    hubspot_id_property: NonEmpty
    hubspot_api_version: NonEmpty = "v3"
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

    @field_validator("hubspot_base_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("hubspot_daily_reset_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known IANA time zone (e.g. UTC, America/New_York)") from None
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


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def load_settings() -> Settings:
    """Settings from the process environment, or a one-line ConfigError."""
    try:
        return Settings()  # type: ignore[call-arg]  # required fields come from the environment
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not field:
            problems.append(message)
            continue
        shown = "" if field in SECRET_FIELDS or "input" not in error else _shown(error["input"])
        problems.append(f"{field.upper()}: {message}{shown}")
    return "invalid configuration: " + "; ".join(problems)


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return ""
    text = str(value)
    return f" (got {text[:80]!r})"
