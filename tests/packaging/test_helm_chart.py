"""The Helm chart, rendered with `helm template` and checked object by object.

The renders use the chart's ci/*-values.yaml (required values only, everything enabled with
KEDA, the HPA variant), the files `helm lint` checks too.

Needs helm (found or installed by `helm_tool`; a skip without it, a failure under CI=true).
Built-in kinds are validated against the Kubernetes 1.33 schemas (kubernetes-validate,
offline, strict); the custom resources (ServiceMonitor, PrometheusRule, ScaledObject) are
checked by the assertions here.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.entry.event_input import load_mapping
from service.entry.settings import SECRET_FIELDS, Settings
from service.entry.tracing import otlp_protocol
from tests.packaging.rendering import (
    CI_VALUES,
    EVERYTHING,
    FULLNAME,
    KUBERNETES_VERSION,
    NAMESPACE,
    REQUIRED,
    Manifest,
    merge,
    one,
    render,
    run_template,
)

pytestmark = pytest.mark.timeout(1800)  # the first run may build helm from source

CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


FAKE_TOKEN: str = EVERYTHING["secrets"]["hubspotAccessToken"]
FAKE_CLIENT_SECRET: str = EVERYTHING["secrets"]["hubspotClientSecret"]
FAKE_REFRESH_TOKEN: str = EVERYTHING["secrets"]["hubspotRefreshToken"]
FAKE_KAFKA_PASSWORD: str = EVERYTHING["secrets"]["kafkaSaslPassword"]
FAKE_SSL_KEY_PASSWORD: str = EVERYTHING["secrets"]["kafkaSslKeyPassword"]
FAKE_REGISTRY_USER_INFO: str = EVERYTHING["secrets"]["schemaRegistryBasicAuthUserInfo"]
FAKE_REGISTRY_TOKEN = "FAKE-REGISTRY-TOKEN-8d3a-must-not-leak"
FAKE_EXTRA_CONFIG: dict[str, Any] = EVERYTHING["secrets"]["kafkaExtraConfig"]
FAKE_OAUTH_CLIENT_SECRET: str = FAKE_EXTRA_CONFIG["sasl.oauthbearer.client.secret"]
# The Secret value Helm's toJson makes of it: compact, keys sorted.
FAKE_EXTRA_CONFIG_JSON = json.dumps(FAKE_EXTRA_CONFIG, separators=(",", ":"), sort_keys=True)
FAKE_SECRETS = (
    FAKE_REGISTRY_USER_INFO,
    FAKE_TOKEN,
    FAKE_CLIENT_SECRET,
    FAKE_REFRESH_TOKEN,
    FAKE_KAFKA_PASSWORD,
    FAKE_SSL_KEY_PASSWORD,
    FAKE_OAUTH_CLIENT_SECRET,
    FAKE_EXTRA_CONFIG_JSON,
)

# Every non-secret contract setting: its config.* value (not the default), and the ConfigMap
# value it must become under the field's upper-cased name.
ALL_SETTINGS: dict[str, tuple[str, Any, str]] = {
    "kafka_bootstrap_servers": ("kafkaBootstrapServers", "b-1:9096,b-2:9096", "b-1:9096,b-2:9096"),
    "kafka_input_topic": ("kafkaInputTopic", "in-topic", "in-topic"),
    "kafka_output_topic": ("kafkaOutputTopic", "out-topic", "out-topic"),
    "kafka_dlq_topic": ("kafkaDlqTopic", "dlq-topic", "dlq-topic"),
    "kafka_group_id": ("kafkaGroupId", "grp-1", "grp-1"),
    "kafka_security_protocol": ("kafkaSecurityProtocol", "SASL_SSL", "SASL_SSL"),
    "kafka_sasl_mechanism": ("kafkaSaslMechanism", "SCRAM-SHA-512", "SCRAM-SHA-512"),
    "kafka_sasl_username": ("kafkaSaslUsername", "upserter", "upserter"),
    "kafka_sasl_password_file": (
        "kafkaSaslPasswordFile",
        "/etc/kafka-sasl/password",
        "/etc/kafka-sasl/password",
    ),
    "kafka_ssl_ca_location": ("kafkaSslCaLocation", "/etc/kafka-ca/ca.pem", "/etc/kafka-ca/ca.pem"),
    "kafka_ssl_certificate_location": (
        "kafkaSslCertificateLocation",
        "/etc/kafka-tls/tls.crt",
        "/etc/kafka-tls/tls.crt",
    ),
    "kafka_ssl_key_location": (
        "kafkaSslKeyLocation",
        "/etc/kafka-tls/tls.key",
        "/etc/kafka-tls/tls.key",
    ),
    "kafka_transactional_id": ("kafkaTransactionalId", "upserter-tx", "upserter-tx"),
    "kafka_commit_metadata_max_bytes": ("kafkaCommitMetadataMaxBytes", 2048, "2048"),
    "hubspot_base_url": (
        "hubspotBaseUrl",
        "https://hubspot.example.test",
        "https://hubspot.example.test",
    ),
    "hubspot_access_token_file": ("hubspotAccessTokenFile", "/var/run/t/token", "/var/run/t/token"),
    "hubspot_client_id": ("hubspotClientId", "client-123", "client-123"),
    "hubspot_oauth_token_url": (
        "hubspotOauthTokenUrl",
        "https://auth.example.test/oauth/v1/token",
        "https://auth.example.test/oauth/v1/token",
    ),
    "hubspot_oauth_refresh_margin_s": ("hubspotOauthRefreshMarginS", 120, "120"),
    "hubspot_auth_retry_s": ("hubspotAuthRetryS", 2.5, "2.5"),
    "hubspot_daily_reset_timezone": (
        "hubspotDailyResetTimezone",
        "America/New_York",
        "America/New_York",
    ),
    "hubspot_daily_probe_interval_s": ("hubspotDailyProbeIntervalS", 60, "60"),
    "hubspot_object_type": ("hubspotObjectType", "p_subs", "p_subs"),
    "hubspot_id_property": ("hubspotIdProperty", "sub_id", "sub_id"),
    "hubspot_api_version": ("hubspotApiVersion", "2025-09", "2025-09"),
    "hubspot_timeout_s": ("hubspotTimeoutS", 12.5, "12.5"),
    "hubspot_retry_backoff_ms": ("hubspotRetryBackoffMs", 250, "250"),
    "hubspot_retry_max_backoff_ms": ("hubspotRetryMaxBackoffMs", 60000, "60000"),
    "hubspot_transient_max_attempts": ("hubspotTransientMaxAttempts", 6, "6"),
    "hubspot_transient_max_s": ("hubspotTransientMaxS", 120, "120"),
    "on_invalid_property": ("onInvalidProperty", "drop", "drop"),
    "association_missing_target": ("associationMissingTarget", "retry", "retry"),
    "association_retry_s": ("associationRetryS", 60, "60"),
    "association_cache_max": ("associationCacheMax", 5000, "5000"),
    "association_cache_ttl_s": ("associationCacheTtlS", 600, "600"),
    "skip_unchanged": ("skipUnchanged", True, "true"),
    "skip_unchanged_max_ids": ("skipUnchangedMaxIds", 20000, "20000"),
    "skip_unchanged_ttl_s": ("skipUnchangedTtlS", 3600, "3600"),
    "hubspot_rate_limit_requests": ("hubspotRateLimitRequests", 95, "95"),
    "hubspot_rate_limit_interval_ms": ("hubspotRateLimitIntervalMs", 5000, "5000"),
    "hubspot_ca_bundle": ("hubspotCaBundle", "/etc/ssl/custom/ca.pem", "/etc/ssl/custom/ca.pem"),
    "input_format": ("inputFormat", "json_schema", "json_schema"),
    "schema_registry_url": (
        "schemaRegistryUrl",
        "https://registry.example.test/apis/ccompat/v7",
        "https://registry.example.test/apis/ccompat/v7",
    ),
    "schema_registry_ca_bundle": (
        "schemaRegistryCaBundle",
        "/etc/registry-ca/ca.pem",
        "/etc/registry-ca/ca.pem",
    ),
    "schema_registry_timeout_s": ("schemaRegistryTimeoutS", 2.5, "2.5"),
    "event_mapping_file": ("eventMappingFile", "/etc/mapping/m.yaml", "/etc/mapping/m.yaml"),
    "batch_max_size": ("batchMaxSize", 50, "50"),
    "batch_max_wait_ms": ("batchMaxWaitMs", 250, "250"),
    "batch_max_bytes": ("batchMaxBytes", 2000000, "2000000"),
    "event_max_properties": ("eventMaxProperties", 500, "500"),
    "max_in_flight_batches": ("maxInFlightBatches", 4, "4"),
    "max_buffered_events": ("maxBufferedEvents", 5000, "5000"),
    "max_buffered_bytes": ("maxBufferedBytes", 134217728, "134217728"),
    "delivery_guarantee": ("deliveryGuarantee", "exactly_once", "exactly_once"),
    "commit_interval_ms": ("commitIntervalMs", 500, "500"),
    "drain_timeout_s": ("drainTimeoutS", 20, "20"),
    "http_host": ("httpHost", "::", "::"),
    "http_port": ("httpPort", 9090, "9090"),
    "log_level": ("logLevel", "DEBUG", "DEBUG"),
}
# Every secret contract setting: its secrets.* value, and the Secret value (decoded) it must
# become under the field's upper-cased name. Never in the ConfigMap.
SECRET_SETTINGS: dict[str, tuple[str, Any, str]] = {
    "hubspot_access_token": ("hubspotAccessToken", FAKE_TOKEN, FAKE_TOKEN),
    "hubspot_client_secret": ("hubspotClientSecret", FAKE_CLIENT_SECRET, FAKE_CLIENT_SECRET),
    "hubspot_refresh_token": ("hubspotRefreshToken", FAKE_REFRESH_TOKEN, FAKE_REFRESH_TOKEN),
    "kafka_sasl_password": ("kafkaSaslPassword", FAKE_KAFKA_PASSWORD, FAKE_KAFKA_PASSWORD),
    "kafka_ssl_key_password": ("kafkaSslKeyPassword", FAKE_SSL_KEY_PASSWORD, FAKE_SSL_KEY_PASSWORD),
    "kafka_extra_config": ("kafkaExtraConfig", FAKE_EXTRA_CONFIG, FAKE_EXTRA_CONFIG_JSON),
    "schema_registry_basic_auth_user_info": (
        "schemaRegistryBasicAuthUserInfo",
        FAKE_REGISTRY_USER_INFO,
        FAKE_REGISTRY_USER_INFO,
    ),
    "schema_registry_bearer_token": (
        "schemaRegistryBearerToken",
        FAKE_REGISTRY_TOKEN,
        FAKE_REGISTRY_TOKEN,
    ),
}
# The registry's user info and bearer token are alternatives (setting both is refused): the
# test that sets every setting leaves this one out, and one of its own renders it.
ALTERNATIVE_SECRET = "schema_registry_bearer_token"


# Every tracing value (tracing.*): a value other than its default, and the OpenTelemetry SDK's
# variable it must become in the ConfigMap. Not settings of the service's own: the SDK reads
# them (docs/tracing.md); set only when tracing.otlpEndpoint is.
TRACING_VALUES: dict[str, tuple[Any, str, str]] = {
    "otlpEndpoint": (
        "https://collector.example.test",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://collector.example.test",
    ),
    "otlpProtocol": ("http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    "sampler": ("traceidratio", "OTEL_TRACES_SAMPLER", "traceidratio"),
    "samplerArg": (0.05, "OTEL_TRACES_SAMPLER_ARG", "0.05"),
    "serviceName": ("upserter-eu", "OTEL_SERVICE_NAME", "upserter-eu"),
    "resourceAttributes": (
        {"k8s.cluster.name": "eu-1", "deployment.environment.name": "prod"},
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment.name=prod,k8s.cluster.name=eu-1",
    ),
}


def _container(manifests: list[Manifest]) -> Manifest:
    containers: list[Manifest] = one(manifests, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert len(containers) == 1
    return containers[0]


def _config_data(manifests: list[Manifest]) -> dict[str, str]:
    data: dict[str, str] = one(manifests, "ConfigMap", FULLNAME)["data"]
    return data


@pytest.mark.parametrize(
    "values_file", sorted(CI_VALUES.glob("*-values.yaml")), ids=lambda path: path.name
)
def test_helm_lint_strict_passes_with_each_ci_values_file(
    helm: Path, chart_dir: Path, values_file: Path
) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(chart_dir), "--values", str(values_file),
         "--kube-version", KUBERNETES_VERSION],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ci_values_files_are_the_ones_the_tests_render() -> None:
    assert sorted(path.name for path in CI_VALUES.glob("*-values.yaml")) == [
        "default-values.yaml", "everything-values.yaml", "hpa-values.yaml"
    ]  # fmt: skip


@pytest.mark.parametrize("case", ["defaults", "everything", "everything_hpa"])
def test_rendered_builtin_objects_validate_against_kubernetes_schemas(
    case: str, request: pytest.FixtureRequest
) -> None:
    manifests: list[Manifest] = request.getfixturevalue(case)
    checked = 0
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 5


def test_defaults_render_only_the_core_objects(defaults: list[Manifest]) -> None:
    kinds = sorted(m["kind"] for m in defaults)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount",
         "Pod"]  # the helm test hook
    )  # fmt: skip


def test_every_optional_object_renders_when_enabled(
    everything: list[Manifest], everything_hpa: list[Manifest]
) -> None:
    kinds = {m["kind"] for m in everything}
    assert {"ServiceMonitor", "PrometheusRule", "ScaledObject", "NetworkPolicy", "Pod",
            "PodDisruptionBudget", "ServiceAccount", "Secret", "CronJob"} <= kinds  # fmt: skip
    # the settings, the dashboard and the event mapping
    assert len([m for m in everything if m["kind"] == "ConfigMap"]) == 3
    assert {"HorizontalPodAutoscaler", "Job"} <= {m["kind"] for m in everything_hpa}
    assert "ScaledObject" not in {m["kind"] for m in everything_hpa}


def test_contract_lists_every_service_setting() -> None:
    fields = set(Settings.model_fields)
    mapped = set(ALL_SETTINGS) | set(SECRET_SETTINGS)
    assert fields == mapped, "a setting was added to service/entry/settings.py: map it"
    assert not set(ALL_SETTINGS) & set(SECRET_SETTINGS)
    assert set(SECRET_FIELDS) <= set(SECRET_SETTINGS), "a service secret is in the ConfigMap"


def test_every_setting_is_settable_and_becomes_its_env_var(
    helm: Path, chart_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {key: value for key, value, _ in ALL_SETTINGS.values()}
    chosen = {
        field: entry for field, entry in SECRET_SETTINGS.items() if field != ALTERNATIVE_SECRET
    }
    secrets = {key: value for key, value, _ in chosen.values()}
    # One replica: a chart-set transactional id is refused with more (replicas fence each other).
    values = merge(
        REQUIRED,
        {"config": config, "secrets": secrets, "terminationGracePeriodSeconds": 60,
         "replicaCount": 1},
    )  # fmt: skip
    manifests = render(helm, chart_dir, values, tmp_path)
    data = _config_data(manifests)
    assert data == {field.upper(): env for field, (_, _, env) in ALL_SETTINGS.items()}
    secret = one(manifests, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {field.upper(): env for field, (_, _, env) in chosen.items()}
    # The service accepts what the chart renders (ConfigMap + Secret as its environment).
    for name in [*Settings.model_fields]:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in {**data, **decoded}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.batch_max_size == 50 and settings.hubspot_timeout_s == 12.5
    assert settings.max_buffered_bytes == 134217728
    assert settings.kafka_ssl_key_location == Path("/etc/kafka-tls/tls.key")
    assert settings.kafka_extra_config == FAKE_EXTRA_CONFIG
    client = settings.kafka_client_config()
    assert client["security.protocol"] == "SASL_SSL"
    assert client["sasl.mechanism"] == "SCRAM-SHA-512"
    assert client["sasl.password"] == FAKE_KAFKA_PASSWORD
    assert client["ssl.key.password"] == FAKE_SSL_KEY_PASSWORD
    assert client["sasl.oauthbearer.client.secret"] == FAKE_OAUTH_CLIENT_SECRET
    assert client["message.max.bytes"] == 2000000


def test_default_config_matches_the_service_defaults(defaults: list[Manifest]) -> None:
    data = _config_data(defaults)
    for name, field in Settings.model_fields.items():
        if name in SECRET_SETTINGS or field.is_required() or field.default is None:
            continue
        default = field.default
        shown = default.value if hasattr(default, "value") else default
        if isinstance(shown, float) and shown.is_integer():
            shown = int(shown)
        if isinstance(shown, bool):
            shown = "true" if shown else "false"
        assert data[name.upper()] == str(shown), name
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0.kafka:9092"
    assert data["HUBSPOT_ID_PROPERTY"] == "sub_id"
    unset = {
        name.upper()
        for name, field in Settings.model_fields.items()
        if name in ALL_SETTINGS and not field.is_required() and field.default is None
    }
    assert {"HUBSPOT_CA_BUNDLE", "KAFKA_SASL_MECHANISM", "KAFKA_TRANSACTIONAL_ID"} <= unset
    assert not unset & set(data)
    decoded = {k: base64.b64decode(v).decode() for k, v in one(defaults, "Secret")["data"].items()}
    assert decoded == {"HUBSPOT_ACCESS_TOKEN": FAKE_TOKEN}  # empty secrets stay unset


@pytest.mark.parametrize("case", ["defaults", "everything", "everything_hpa"])
def test_no_secret_value_appears_outside_a_secret(
    case: str, request: pytest.FixtureRequest
) -> None:
    manifests: list[Manifest] = request.getfixturevalue(case)
    needles = [*FAKE_SECRETS, *(base64.b64encode(s.encode()).decode() for s in FAKE_SECRETS)]
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            continue
        text = json.dumps(manifest)
        for needle in needles:
            assert needle not in text, f"{needle} leaked into {manifest['kind']}"


def test_secrets_reach_the_pod_only_by_reference(everything: list[Manifest]) -> None:
    secret = one(everything, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "HUBSPOT_ACCESS_TOKEN": FAKE_TOKEN,
        "HUBSPOT_CLIENT_SECRET": FAKE_CLIENT_SECRET,
        "HUBSPOT_REFRESH_TOKEN": FAKE_REFRESH_TOKEN,
        "KAFKA_SASL_PASSWORD": FAKE_KAFKA_PASSWORD,
        "KAFKA_SSL_KEY_PASSWORD": FAKE_SSL_KEY_PASSWORD,
        "KAFKA_EXTRA_CONFIG": FAKE_EXTRA_CONFIG_JSON,
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO": FAKE_REGISTRY_USER_INFO,
    }
    container = _container(everything)
    refs = [source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source]
    assert refs == [FULLNAME]
    assert all("value" in var or "valueFrom" in var for var in container.get("env", []))


def test_existing_secret_is_referenced_and_no_secret_is_made(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    values = merge(
        REQUIRED, {"secrets": {"existingSecret": "upserter-creds", "hubspotAccessToken": ""}}
    )
    manifests = render(helm, chart_dir, values, tmp_path)
    assert not [m for m in manifests if m["kind"] == "Secret"]
    refs = [s["secretRef"]["name"] for s in _container(manifests)["envFrom"] if "secretRef" in s]
    assert refs == ["upserter-creds"]


def test_missing_hubspot_credentials_fail_the_render(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    values = merge(REQUIRED, {"secrets": {"hubspotAccessToken": ""}})
    result = run_template(helm, chart_dir, values, tmp_path)
    assert result.returncode != 0 and "HubSpot credentials missing" in result.stderr


SASL_SCRAM = {
    "config": {
        "kafkaSecurityProtocol": "SASL_SSL",
        "kafkaSaslMechanism": "SCRAM-SHA-256",
        "kafkaSaslUsername": "upserter",
    },
    "secrets": {"kafkaSaslPassword": FAKE_KAFKA_PASSWORD},
}


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"config": {"kafkaSaslMechanism": ""}}, "config.kafkaSaslMechanism is required"),
        ({"config": {"kafkaSaslUsername": ""}}, "config.kafkaSaslUsername is required"),
        ({"secrets": {"kafkaSaslPassword": ""}}, "a Kafka SASL password is required"),
        (
            {"secrets": {"extra": {"KAFKA_SASL_PASSWORD": "again"}}},
            "secrets.extra.KAFKA_SASL_PASSWORD repeats a key",
        ),
    ],
    ids=["no-mechanism", "no-username", "no-password", "password-twice"],
)
def test_incomplete_kafka_sasl_settings_fail_the_render(
    helm: Path, chart_dir: Path, tmp_path: Path, overlay: dict[str, Any], message: str
) -> None:
    result = run_template(helm, chart_dir, merge(REQUIRED, SASL_SCRAM, overlay), tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "overlay",
    [
        {},
        {"secrets": {"kafkaSaslPassword": ""}, "config": {"kafkaSaslPasswordFile": "/etc/k/pw"}},
        {"secrets": {"kafkaSaslPassword": "", "extra": {"KAFKA_SASL_PASSWORD": "pw"}}},
        {"secrets": {"kafkaSaslPassword": "", "existingSecret": "kafka-and-hubspot"}},
        {"config": {"kafkaSaslMechanism": "OAUTHBEARER", "kafkaSaslUsername": ""},
         "secrets": {"kafkaSaslPassword": ""}},
        {"config": {"kafkaSecurityProtocol": "SSL", "kafkaSaslMechanism": ""}},
    ],
    ids=["password", "password-file", "password-in-extra", "existing-secret", "oauth", "ssl"],
)  # fmt: skip
def test_complete_kafka_security_settings_render(
    helm: Path, chart_dir: Path, tmp_path: Path, overlay: dict[str, Any]
) -> None:
    result = run_template(helm, chart_dir, merge(REQUIRED, SASL_SCRAM, overlay), tmp_path)
    assert result.returncode == 0, result.stderr


def test_probes_and_ports_match_the_service_endpoints(defaults: list[Manifest]) -> None:
    container = _container(defaults)
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["args"] == ["run"]
    service = one(defaults, "Service")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]


def test_pod_is_hardened_and_writes_only_to_tmp(defaults: list[Manifest]) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = _container(defaults)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"name": "tmp", "mountPath": "/tmp"} in _container(defaults)["volumeMounts"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    assert _container(defaults)["resources"]["requests"]


def test_pods_spread_over_zones_and_nodes(defaults: list[Manifest]) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    keys = [c["topologyKey"] for c in pod["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    selector = one(defaults, "Deployment")["spec"]["selector"]["matchLabels"]
    assert all(
        c["labelSelector"]["matchLabels"] == selector for c in pod["topologySpreadConstraints"]
    )


def _grace_values(grace: float, drain: float, timeout: float) -> dict[str, object]:
    """Required values with a grace period, drain timeout and HubSpot request timeout."""
    return merge(
        REQUIRED,
        {"terminationGracePeriodSeconds": grace,
         "config": {"drainTimeoutS": drain, "hubspotTimeoutS": timeout}},
    )  # fmt: skip


def test_grace_period_covers_drain_one_hubspot_request_and_a_flush(
    defaults: list[Manifest],
) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    data = _config_data(defaults)
    needed = float(data["DRAIN_TIMEOUT_S"]) + float(data["HUBSPOT_TIMEOUT_S"]) + 25
    assert pod["terminationGracePeriodSeconds"] >= needed


@pytest.mark.parametrize(
    "times",
    [(30, 30, 30), (30, 45, 1), (60, 30, 30), (84, 30, 30), (50, 10, 15.5)],
    ids=["equal-to-drain", "below-drain", "above-drain", "one-short", "fractional"],
)
def test_grace_period_short_of_drain_request_and_flush_fails_the_render(
    helm: Path, chart_dir: Path, tmp_path: Path, times: tuple[int, float, float]
) -> None:
    values = _grace_values(*times)
    result = run_template(helm, chart_dir, values, tmp_path)
    assert result.returncode != 0
    assert "must be at least config.drainTimeoutS + config.hubspotTimeoutS + 25" in result.stderr, (
        result.stderr
    )


@pytest.mark.parametrize("times", [(85, 30, 30), (51, 10, 15.5)], ids=["exact", "fractional"])
def test_grace_period_of_drain_request_and_flush_renders(
    helm: Path, chart_dir: Path, tmp_path: Path, times: tuple[int, float, float]
) -> None:
    values = _grace_values(*times)
    assert run_template(helm, chart_dir, values, tmp_path).returncode == 0


def test_config_checksum_rolls_the_pods_when_settings_change(
    helm: Path, chart_dir: Path, tmp_path: Path, defaults: list[Manifest]
) -> None:
    def checksum(manifests: list[Manifest]) -> str:
        value: str = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        return value

    changed_config = render(
        helm, chart_dir, merge(REQUIRED, {"config": {"batchMaxSize": 10}}), tmp_path
    )
    changed_secret = render(
        helm, chart_dir, merge(REQUIRED, {"secrets": {"hubspotAccessToken": "x"}}), tmp_path
    )
    assert len(checksum(defaults)) == 64
    assert len({checksum(defaults), checksum(changed_config), checksum(changed_secret)}) == 3


def test_dashboard_configmap_is_the_dashboard_file_byte_for_byte(
    everything: list[Manifest], chart_dir: Path
) -> None:
    dashboard = one(everything, "ConfigMap", f"{FULLNAME}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    assert content.encode() == (chart_dir / "files" / "dashboard.json").read_bytes()


def test_prometheus_rule_renders_every_alert_of_the_alerts_file(
    everything: list[Manifest], chart_dir: Path
) -> None:
    rule = one(everything, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    listed = yaml.safe_load((chart_dir / "files" / "alerts.yaml").read_text())["alerts"]
    assert [r["alert"] for r in group["rules"]] == [a["alert"] for a in listed]
    for rendered in group["rules"]:
        assert "${" not in json.dumps(rendered), f"unfilled placeholder in {rendered['alert']}"
        assert rendered["labels"]["team"] == "streaming"  # additionalAlertLabels


def test_service_monitor_scrapes_metrics_on_the_http_port(everything: list[Manifest]) -> None:
    monitor = one(everything, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    service_labels = one(everything, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


@pytest.mark.parametrize(
    ("overlay", "job"),
    [
        ({}, FULLNAME),
        ({"fullnameOverride": "orders-sync"}, "orders-sync"),
        ({"serviceMonitor": {"jobLabel": "upserter-blue"}}, "upserter-blue"),
    ],
    ids=["release", "fullname-override", "job-label"],
)
def test_service_monitor_sets_the_job_label_every_alert_selects(
    helm: Path, chart_dir: Path, tmp_path: Path, overlay: dict[str, Any], job: str
) -> None:
    # Two releases in one namespace get two jobs; the alerts select namespace and job.
    values = merge(
        REQUIRED,
        {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        overlay,
    )
    manifests = render(helm, chart_dir, values, tmp_path)
    (endpoint,) = one(manifests, "ServiceMonitor")["spec"]["endpoints"]
    job_rules = [r for r in endpoint.get("relabelings", []) if r.get("targetLabel") == "job"]
    assert job_rules == [{"action": "replace", "targetLabel": "job", "replacement": job}]
    rules = one(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    down = next(rule for rule in rules if rule["alert"] == "SubscriptionUpserterDown")
    assert f'up{{namespace="{NAMESPACE}", job="{job}"}} == 0' in down["expr"]


def test_keda_scales_the_deployment_on_consumer_group_lag(everything: list[Manifest]) -> None:
    scaled = one(everything, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["authenticationRef"] == {"name": "kafka-sasl"}
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == "subscription-upserter"
    assert meta["topic"] == "subscription-events"
    assert meta["bootstrapServers"] == "kafka-0.kafka:9092"
    assert meta["allowIdleConsumers"] == "false"
    assert all(isinstance(v, str) for v in meta.values())
    assert "replicas" not in one(everything, "Deployment")["spec"]


def test_hpa_targets_the_deployment_and_owns_the_replica_count(
    everything_hpa: list[Manifest],
) -> None:
    hpa = one(everything_hpa, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    assert "replicas" not in one(everything_hpa, "Deployment")["spec"]


def test_hpa_and_keda_together_are_refused(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    values = merge(REQUIRED, {"autoscaling": {"enabled": True}, "keda": {"enabled": True}})
    assert run_template(helm, chart_dir, values, tmp_path).returncode != 0


def test_keda_scaling_to_zero_is_refused_while_the_alerts_are_enabled(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    # At zero replicas SubscriptionUpserterAbsent (critical) would fire in every idle period.
    to_zero = merge(REQUIRED, {"keda": {"enabled": True, "minReplicaCount": 0}})
    refused = run_template(
        helm, chart_dir, merge(to_zero, {"prometheusRule": {"enabled": True}}), tmp_path
    )
    assert refused.returncode != 0
    assert "keda.minReplicaCount 0" in refused.stderr, refused.stderr
    assert run_template(helm, chart_dir, to_zero, tmp_path).returncode == 0
    one = merge(to_zero, {"keda": {"minReplicaCount": 1}, "prometheusRule": {"enabled": True}})
    assert run_template(helm, chart_dir, one, tmp_path).returncode == 0


@pytest.mark.parametrize(
    "scaling",
    [
        {"replicaCount": 2},
        {"replicaCount": 1, "autoscaling": {"enabled": True}},
        {"replicaCount": 1, "keda": {"enabled": True}},
    ],
    ids=["replicas", "hpa", "keda"],
)
def test_a_chart_set_transactional_id_with_several_replicas_fails_the_render(
    helm: Path, chart_dir: Path, tmp_path: Path, scaling: dict[str, Any]
) -> None:
    # Every replica would get the same id, and Kafka fences all but the newest producer.
    tx = {"config": {"deliveryGuarantee": "exactly_once", "kafkaTransactionalId": "upserter-tx"}}
    result = run_template(helm, chart_dir, merge(REQUIRED, tx, scaling), tmp_path)
    assert result.returncode != 0
    assert "config.kafkaTransactionalId" in result.stderr, result.stderr
    single = merge(REQUIRED, tx, {"replicaCount": 1})
    assert run_template(helm, chart_dir, single, tmp_path).returncode == 0
    unset = merge(REQUIRED, {"config": {"deliveryGuarantee": "exactly_once"}}, scaling)
    assert run_template(helm, chart_dir, unset, tmp_path).returncode == 0


def test_network_policy_allows_dns_kafka_https_out_and_http_in(everything: list[Manifest]) -> None:
    policy = one(everything, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {
        (53, "UDP"), (53, "TCP"), (9092, "TCP"), (9093, "TCP"), (443, "TCP"), (8081, "TCP"),
        (4317, "TCP"),  # the OTLP collector of tracing.otlpEndpoint
    }  # fmt: skip


def test_tracing_values_become_the_sdks_variables_and_the_service_takes_them(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())["tracing"]
    assert set(TRACING_VALUES) == set(defaults), "a tracing value was added: map it"
    tracing = {key: value for key, (value, _, _) in TRACING_VALUES.items()}
    data = _config_data(render(helm, chart_dir, merge(REQUIRED, {"tracing": tracing}), tmp_path))
    rendered = {name: value for name, value in data.items() if name.startswith("OTEL_")}
    assert rendered == {env: shown for _, env, shown in TRACING_VALUES.values()}
    assert otlp_protocol(data) == "http/protobuf"


def test_tracing_is_off_unless_an_endpoint_is_set(defaults: list[Manifest]) -> None:
    data = _config_data(defaults)
    assert not [name for name in data if name.startswith("OTEL_")]
    assert otlp_protocol(data) is None


@pytest.mark.parametrize(
    ("tracing", "port"),
    [
        ({"otlpEndpoint": "http://collector:55681"}, 55681),
        ({"otlpEndpoint": "https://collector.example.test"}, 443),
        ({"otlpEndpoint": "http://collector", "otlpProtocol": "http/protobuf"}, 4318),
        ({"otlpEndpoint": "http://collector"}, 4317),
    ],
)
def test_the_network_policy_lets_spans_out_on_the_collectors_port(
    helm: Path, chart_dir: Path, tmp_path: Path, tracing: dict[str, str], port: int
) -> None:
    collector = [{"namespaceSelector": {"matchLabels": {"name": "observability"}}}]
    values = merge(
        REQUIRED, {"tracing": tracing, "networkPolicy": {"enabled": True, "otlpTo": collector}}
    )
    policy = one(render(helm, chart_dir, values, tmp_path), "NetworkPolicy")["spec"]
    [rule] = [rule for rule in policy["egress"] if rule.get("to") == collector]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]


def test_token_file_mounts_the_secret_directory_and_sets_the_path(
    everything: list[Manifest],
) -> None:
    assert _config_data(everything)["HUBSPOT_ACCESS_TOKEN_FILE"] == "/var/run/secrets/hubspot/token"
    mount = next(m for m in _container(everything)["volumeMounts"] if m["name"] == "hubspot-token")
    assert mount == {
        "name": "hubspot-token",
        "mountPath": "/var/run/secrets/hubspot",
        "readOnly": True,
    }
    assert "subPath" not in mount  # subPath mounts never see a rotated token


def test_extra_env_is_passed_through(everything: list[Manifest]) -> None:
    assert {"name": "KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "value": "https"} in _container(
        everything
    )["env"]


@pytest.mark.parametrize(
    "bad",
    [
        {"replicaCount": "three"},
        {"config": {"batchMaxSize": 500}},
        {"config": {"batchMaxSize": 0}},
        {"config": {"batchMaxSize": "100"}},
        {"config": {"deliveryGuarantee": "at_most_once"}},
        {"config": {"logLevel": "TRACE"}},
        {"config": {"hubspotIdProperty": ""}},
        {"config": {"kafkaBootstrapServers": ""}},
        {"config": {"hubspotBaseUrl": "api.hubapi.com"}},
        {"config": {"httpPort": 70000}},
        {"config": {"unknownSetting": 1}},
        {"config": {"kafkaSecurityProtocol": "TLS"}},
        {"config": {"kafkaSecurityProtocol": ""}},
        {"config": {"kafkaSaslMechanism": "SCRAM"}},
        {"config": {"kafkaSslKeyLocation": "tls.key"}},
        {"secrets": {"kafkaExtraConfig": "ssl.endpoint.identification.algorithm=https"}},
        {"secrets": {"kafkaExtraConfig": {"socket.timeout.ms": [1, 2]}}},
        {"secrets": {"kafkaSslKeyPassword": 1234}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"keda": {"offsetResetPolicy": "middle"}},
        {"tracing": {"sampler": "sometimes"}},
        {"tracing": {"samplerArg": 1.5}},
        {"tracing": {"otlpProtocol": "http/json"}},
        {"tracing": {"otlpEndpoint": "collector:4317"}},
        {"tracing": {"resourceAttributes": {"team": "a,b"}}},
        {"tracing": {"unknown": 1}},
    ],
    ids=lambda bad: json.dumps(bad, separators=(",", ":")),
)
def test_schema_rejects_bad_values(
    helm: Path, chart_dir: Path, tmp_path: Path, bad: dict[str, Any]
) -> None:
    result = run_template(helm, chart_dir, merge(REQUIRED, bad), tmp_path)
    assert result.returncode != 0
    assert "schema" in result.stderr.lower(), result.stderr


def test_values_file_documents_every_value(chart_dir: Path) -> None:
    free_form = {"podSecurityContext", "securityContext", "resources"}  # documented as a whole
    lines = (chart_dir / "values.yaml").read_text().splitlines()
    section = ""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section = stripped.split(":")[0]
        elif section in free_form:
            continue
        if indent > 2:  # nested members of documented objects (securityContext, resources...)
            continue
        previous = lines[index - 1].strip() if index else ""
        is_section = stripped.endswith(":") and indent == 0
        assert previous.startswith("#") or is_section, f"undocumented value: {stripped}"


def test_the_event_mapping_is_mounted_from_its_configmap_and_read_by_the_service(
    everything: list[Manifest], tmp_path: Path
) -> None:
    mapping = one(everything, "ConfigMap", f"{FULLNAME}-event-mapping")["data"]["mapping.yaml"]
    assert yaml.safe_load(mapping) == EVERYTHING["eventMapping"]["content"]
    path = "/etc/subscription-upserter/event-mapping/mapping.yaml"
    assert _config_data(everything)["EVENT_MAPPING_FILE"] == path
    mount = next(m for m in _container(everything)["volumeMounts"] if m["name"] == "event-mapping")
    assert mount == {"name": "event-mapping", "mountPath": path.rsplit("/", 1)[0], "readOnly": True}
    redrive = [m for m in everything if m["kind"] in ("Job", "CronJob")]
    for job in redrive:  # redrive reads the same settings, the file's path included
        assert "event-mapping" in json.dumps(job)
    (tmp_path / "mapping.yaml").write_text(mapping)
    loaded = load_mapping(tmp_path / "mapping.yaml")  # what the service makes of it
    assert {rule.name for rule in loaded.properties} == {"hs_name", "hs_status", "hs_amount"}


def test_the_registry_bearer_token_goes_to_the_secret(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    values = merge(REQUIRED, {"secrets": {"schemaRegistryBearerToken": FAKE_REGISTRY_TOKEN}})
    manifests = render(helm, chart_dir, values, tmp_path)
    decoded = {k: base64.b64decode(v).decode() for k, v in one(manifests, "Secret")["data"].items()}
    assert decoded["SCHEMA_REGISTRY_BEARER_TOKEN"] == FAKE_REGISTRY_TOKEN
    assert FAKE_REGISTRY_TOKEN not in json.dumps(one(manifests, "ConfigMap", FULLNAME))


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"config": {"inputFormat": "protobuf"}}, "config.schemaRegistryUrl is required"),
        ({"config": {"inputFormat": "avro", "schemaRegistryUrl": "http://r:8081"},
          "secrets": {"schemaRegistryBasicAuthUserInfo": "a:b",
                      "schemaRegistryBearerToken": "t"}}, "not both"),
    ],
)  # fmt: skip
def test_registry_settings_the_service_would_refuse_fail_the_render(
    helm: Path, chart_dir: Path, tmp_path: Path, values: dict[str, Any], says: str
) -> None:
    result = run_template(helm, chart_dir, merge(REQUIRED, values), tmp_path)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr
