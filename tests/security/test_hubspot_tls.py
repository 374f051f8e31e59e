"""HubSpot calls verify TLS by default; HUBSPOT_CA_BUNDLE makes a private CA trusted."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.emulator import EmulatorConfig, RunningEmulator, start_in_thread
from tests.integration.support import (
    TOKEN,
    event_bytes,
    new_topics,
    produce,
    run_until_results,
    running_service,
    service_env,
    wait_until,
)
from tests.security.certs import Certificates, make_certificates

pytestmark = [pytest.mark.kafka]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("hubspot-tls"))


@pytest.fixture
def tls_emulator(certificates: Certificates) -> Iterator[RunningEmulator]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.certificate, certificates.key)
    running = start_in_thread(EmulatorConfig(tokens=frozenset({TOKEN})), tls=context)
    try:
        yield running
    finally:
        running.stop()


def test_an_untrusted_certificate_is_refused_and_nothing_is_upserted(
    kafka_bootstrap: str, tls_emulator: RunningEmulator, tmp_path: Path
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, [event_bytes("sub-1", hs_name="x")])
    env = service_env(kafka_bootstrap, topics, tls_emulator.tls_url)
    with running_service(env, tmp_path / "service.log") as service:
        wait_until(
            lambda: service.metric("subscription_upserter_hubspot_retries_total") >= 2,
            60,
            "retries after TLS failures",
        )
        assert service.metric("subscription_upserter_results_total") == 0
        assert service.stop() == 0
        log = service.log_text()
    assert "transient failure" in log and "ConnectError" in log
    assert tls_emulator.control.requests() == []


def test_a_ca_bundle_makes_the_private_certificate_trusted(
    kafka_bootstrap: str,
    tls_emulator: RunningEmulator,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    topics = new_topics(kafka_bootstrap, partitions=1)
    produce(kafka_bootstrap, topics.input, [event_bytes(f"sub-{n}", hs_name="x") for n in range(5)])
    env = service_env(
        kafka_bootstrap, topics, tls_emulator.tls_url, HUBSPOT_CA_BUNDLE=str(certificates.ca)
    )
    run_until_results(env, tmp_path / "service.log", 5, timeout_s=60)
    assert len(tls_emulator.control.store()) == 5
