"""A second, secured broker for this package's tests (the shared session broker is untouched).

``secure_kafka`` (session): a LocalBroker in its own directory with a ``SASL_SSL`` listener
(SCRAM-SHA-512, certificates made by the test) next to the PLAINTEXT one, which is used to
create topics and to produce/read test data; inter-broker traffic stays PLAINTEXT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.kafka import HOST, Listener, LocalBroker
from tests.integration.conftest import emulator
from tests.security.certs import Certificates, make_certificates

__all__ = ["emulator"]

KAFKA_USER = "upserter"
KAFKA_PASSWORD = "KafkaPw7c1d9e4b2aSecret"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class SecureKafka:
    plaintext: str  # bootstrap of the PLAINTEXT listener (admin and test data)
    sasl_ssl: str  # bootstrap of the SASL_SSL listener (the service under test)
    certificates: Certificates
    username: str
    password: str
    broker: LocalBroker


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    certificates = make_certificates(tmp_path_factory.mktemp("certs"))
    prefix = "listener.name.sasl_ssl."
    broker = LocalBroker(
        tmp_path_factory.mktemp("secure-kafka"),
        listeners=[Listener("SASL_SSL", 0, "SASL_SSL")],
        extra_properties={
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            prefix + "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            prefix + "scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            prefix + "ssl.keystore.type": "PEM",
            prefix + "ssl.keystore.location": str(certificates.keystore),
            prefix + "ssl.client.auth": "none",
        },
        format_args=[
            "--add-scram",
            f"SCRAM-SHA-512=[name={KAFKA_USER},password={KAFKA_PASSWORD}]",
        ],
    )
    broker.start(timeout_s=START_TIMEOUT_S)
    try:
        yield SecureKafka(
            plaintext=broker.bootstrap_servers,
            sasl_ssl=f"{HOST}:{broker.listener_port('SASL_SSL')}",
            certificates=certificates,
            username=KAFKA_USER,
            password=KAFKA_PASSWORD,
            broker=broker,
        )
    finally:
        broker.stop()
