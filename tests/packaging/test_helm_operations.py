"""What the chart gives the team that runs it: a PodDisruptionBudget that never blocks a node
drain on a not-ready pod, alerts set per alert from values with runbook links built from one
base URL, the optional redrive Job or CronJob, the `helm test` hook, NOTES.txt, and a README
generated from the values' comments (helm-docs) that must not drift."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.rendering import (
    EVERYTHING,
    FULLNAME,
    HPA,
    NAMESPACE,
    REQUIRED,
    Manifest,
    merge,
    one,
    render,
    run_template,
)

RULES_ON = {"prometheusRule": {"enabled": True}}
DEFAULT_RUNBOOK = "https://github.com/example/subscription-upserter/blob/main/docs/runbook.md"


def _rules(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    rules = one(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    return {rule["alert"]: rule for rule in rules}


def _selector(manifests: list[Manifest]) -> dict[str, str]:
    labels: dict[str, str] = one(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    return labels


# -- PodDisruptionBudget --------------------------------------------------------------------


def test_not_ready_pods_never_block_a_node_drain(defaults: list[Manifest]) -> None:
    pdb = one(defaults, "PodDisruptionBudget")["spec"]
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == _selector(defaults)


def test_the_eviction_policy_is_a_value_and_left_out_before_kubernetes_1_26(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    values = merge(
        REQUIRED, {"podDisruptionBudget": {"unhealthyPodEvictionPolicy": "IfHealthyBudget"}}
    )
    pdb = one(render(helm, chart_dir, values, tmp_path), "PodDisruptionBudget")["spec"]
    assert pdb["unhealthyPodEvictionPolicy"] == "IfHealthyBudget"
    old = subprocess.run(
        [str(helm), "template", "upserter", str(chart_dir), "--kube-version", "1.25.0",
         "--set", "config.kafkaBootstrapServers=k:9092", "--set", "config.hubspotIdProperty=id",
         "--set", "secrets.hubspotAccessToken=t"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    manifests = [doc for doc in yaml.safe_load_all(old.stdout) if doc]
    assert "unhealthyPodEvictionPolicy" not in one(manifests, "PodDisruptionBudget")["spec"]


# -- Alerts: runbook links and per-alert values ----------------------------------------------


def test_every_runbook_url_points_at_its_section_of_the_runbook_by_default(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    rules = _rules(render(helm, chart_dir, merge(REQUIRED, RULES_ON), tmp_path))
    assert len(rules) == 11
    for name, rule in rules.items():
        assert rule["annotations"]["runbook_url"] == f"{DEFAULT_RUNBOOK}#{name.lower()}"


def test_the_runbook_base_url_is_a_value(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    base = "https://wiki.example.com/streaming/upserter-runbook"
    values = merge(REQUIRED, {"prometheusRule": {"enabled": True, "runbookBaseUrl": base}})
    for name, rule in _rules(render(helm, chart_dir, values, tmp_path)).items():
        assert rule["annotations"]["runbook_url"] == f"{base}#{name.lower()}"


def test_an_alert_can_be_turned_off(helm: Path, chart_dir: Path, tmp_path: Path) -> None:
    off = {"prometheusRule": {"alerts": {"rateLimited": {"enabled": False}}}}
    rules = _rules(render(helm, chart_dir, merge(REQUIRED, RULES_ON, off), tmp_path))
    assert "SubscriptionUpserterRateLimited" not in rules
    assert len(rules) == 10


def test_for_severity_and_threshold_are_values_of_each_alert(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    lag = {"for": "30m", "severity": "critical", "threshold": 50000}
    near = {"threshold": 0.25}
    values = merge(
        REQUIRED,
        RULES_ON,
        {"prometheusRule": {"alerts": {"lagGrowing": lag, "dailyLimitNear": near}}},
    )
    rules = _rules(render(helm, chart_dir, values, tmp_path))
    growing = rules["SubscriptionUpserterLagGrowing"]
    assert growing["for"] == "30m" and growing["labels"]["severity"] == "critical"
    assert growing["expr"].rstrip().endswith("> 50000")
    assert "above 50000 messages" in growing["annotations"]["description"]
    budget = rules["SubscriptionUpserterDailyLimitNear"]
    assert budget["expr"].rstrip().endswith("< 0.25")
    assert budget["annotations"]["summary"].startswith("Less than 25% ")
    untouched = rules["SubscriptionUpserterRateLimited"]
    assert untouched["for"] == "15m" and untouched["expr"].rstrip().endswith("> 5")


def test_the_readiness_alert_ignores_the_reasons_it_is_told_to(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    ignored = {
        "prometheusRule": {"alerts": {"notReady": {"ignoredReasons": ["daily_limit", "shutdown"]}}}
    }
    rules = _rules(render(helm, chart_dir, merge(REQUIRED, RULES_ON, ignored), tmp_path))
    assert 'reason!~"daily_limit|shutdown"' in rules["SubscriptionUpserterNotReady"]["expr"]


@pytest.mark.parametrize(
    "bad",
    [
        {"runbookBaseUrl": "docs/runbook.md"},
        {"runbookBaseUrl": "https://example.com/runbook.md#section"},
        {"alerts": {"down": {"severity": "page"}}},
        {"alerts": {"down": {"for": "five minutes"}}},
        {"alerts": {"dailyLimitNear": {"threshold": 10}}},
        {"alerts": {"notReady": {"ignoredReasons": ["sleepy"]}}},
        {"alerts": {"unknown": {"enabled": True}}},
    ],
    ids=["relative-url", "url-with-anchor", "severity", "for", "fraction", "reason", "unknown"],
)
def test_the_schema_rejects_bad_alert_values(
    helm: Path, chart_dir: Path, tmp_path: Path, bad: dict[str, Any]
) -> None:
    result = run_template(helm, chart_dir, merge(REQUIRED, {"prometheusRule": bad}), tmp_path)
    assert result.returncode != 0 and "schema" in result.stderr.lower(), result.stderr


# -- The redrive Job and CronJob ---------------------------------------------------------------


@pytest.fixture(scope="module")
def redrive_job(helm: Path, chart_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    manifests = render(helm, chart_dir, HPA, tmp_path_factory.mktemp("redrive"))
    return one(manifests, "Job")


def test_the_redrive_job_runs_redrive_with_the_services_settings_and_hardening(
    redrive_job: Manifest, defaults: list[Manifest]
) -> None:
    assert redrive_job["metadata"]["name"] == f"{FULLNAME}-redrive-1"  # one per revision
    pod = redrive_job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["redrive", *HPA["redrive"]["args"]]
    service = one(defaults, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == service["image"]
    assert container["envFrom"] == service["envFrom"]
    assert container["securityContext"] == service["securityContext"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 60 + 10  # the producer's last flush
    assert redrive_job["spec"]["activeDeadlineSeconds"] == 3600


def test_redrive_pods_are_not_counted_as_service_pods(
    redrive_job: Manifest, defaults: list[Manifest]
) -> None:
    labels = redrive_job["spec"]["template"]["metadata"]["labels"]
    assert not _selector(defaults).items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "redrive"


def test_a_schedule_makes_a_cronjob_that_never_overlaps(everything: list[Manifest]) -> None:
    cron = one(everything, "CronJob")
    assert cron["spec"]["schedule"] == EVERYTHING["redrive"]["schedule"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["redrive", "--category", "NOT_JSON"]
    assert not [m for m in everything if m["kind"] == "Job"]


def test_redrive_is_off_by_default(defaults: list[Manifest]) -> None:
    assert not [m for m in defaults if m["kind"] in {"Job", "CronJob"}]


# -- helm test --------------------------------------------------------------------------------


def test_the_helm_test_hook_asks_the_services_readyz(defaults: list[Manifest]) -> None:
    pod = one(defaults, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert not _selector(defaults).items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    service = one(defaults, "Service")
    port = service["spec"]["ports"][0]["port"]
    url = f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{port}/readyz"
    assert container["command"][:2] == ["python", "-c"]
    assert container["command"][3:] == [url, "120"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


class _Replies(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b"ok\n" if self.status == 200 else b"credentials: refused\n"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def readyz_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Replies,), {"status": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/readyz"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("readyz_server", "code"), [(200, 0), (503, 1)], indirect=["readyz_server"]
)
def test_the_hooks_check_passes_on_200_and_fails_when_nothing_is_ready(
    defaults: list[Manifest], readyz_server: str, code: int
) -> None:
    (container,) = one(defaults, "Pod")["spec"]["containers"]
    script = container["command"][2]
    result = subprocess.run(
        [sys.executable, "-c", script, readyz_server, "1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == code, result.stdout + result.stderr


# -- NOTES.txt and the generated README -----------------------------------------------------


def _notes(helm: Path, chart_dir: Path, values: dict[str, Any], tmp_path: Path) -> str:
    """NOTES.txt as `helm install` prints it (`helm template` leaves it out, so a copy of the
    chart wraps it in a template of its own)."""
    chart = tmp_path / "chart"
    shutil.copytree(chart_dir, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "notes-preview.yaml").write_text(
        '{{- define "notes.preview" }}' + notes + "{{- end }}\n"
        'notes: {{ include "notes.preview" . | toJson }}\n'
    )
    result = run_template(helm, chart, values, tmp_path)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d and "notes" in d]
    text: str = documents[0]["notes"]
    return text


def test_notes_say_how_to_see_it_run_and_where_the_dashboard_and_runbook_are(
    helm: Path, chart_dir: Path, tmp_path: Path
) -> None:
    text = _notes(helm, chart_dir, EVERYTHING, tmp_path)
    assert f"rollout status deployment/{FULLNAME}" in text
    assert "/readyz" in text and "helm test upserter" in text
    assert f"ConfigMap {FULLNAME}-dashboard" in text and "uid subscription-upserter" in text
    assert f"Runbook (each alert's runbook_url): {DEFAULT_RUNBOOK}" in text
    assert f'job="{FULLNAME}"' in text
    assert f"CronJob {FULLNAME}-redrive" in text
    plain = _notes(helm, chart_dir, REQUIRED, tmp_path / "plain")
    assert "Import files/dashboard.json" in plain and "Redrive" not in plain


def test_the_chart_readme_is_what_helm_docs_generates(helm_docs: Path, chart_dir: Path) -> None:
    result = subprocess.run(
        [str(helm_docs), "--dry-run", "--chart-search-root", str(chart_dir),
         "--sort-values-order", "file", "--log-level", "warning"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    committed = (chart_dir / "README.md").read_text()
    assert result.stdout.strip() == committed.strip(), (
        "helm/subscription-upserter/README.md is out of date: run "
        "helm-docs --chart-search-root helm --sort-values-order file"
    )
    assert "| prometheusRule.alerts.notReady.severity |" in committed
