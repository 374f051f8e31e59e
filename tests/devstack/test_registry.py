"""The local Schema Registry: loopback only, keeps schemas and ids across a restart, reports
a failed start, and recovers from a crash."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from devstack.registry import LocalRegistry, RegistryError
from tests.devstack.procfs import listening_addresses

_SCHEMA = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "long"}]}
_CONTENT_TYPE = {"Content-Type": "application/vnd.schemaregistry.v1+json"}


def _register(url: str, subject: str) -> int:
    reply = httpx.post(
        f"{url}/subjects/{subject}/versions",
        json={"schema": json.dumps(_SCHEMA)},
        headers=_CONTENT_TYPE,
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return int(reply.json()["id"])


def test_registry_answers_the_confluent_api(
    schema_registry_url: str, local_registry: LocalRegistry | None
) -> None:
    reply = httpx.get(schema_registry_url + "/subjects", timeout=10)
    assert reply.status_code == 200
    assert isinstance(reply.json(), list)
    if local_registry is not None:
        assert schema_registry_url == f"http://127.0.0.1:{local_registry.port}/apis/ccompat/v7"
        assert local_registry.pid is not None
        assert listening_addresses(local_registry.pid) == {("127.0.0.1", local_registry.port)}


def test_an_unknown_schema_id_is_a_404_with_the_confluent_error_code(
    schema_registry_url: str,
) -> None:
    reply = httpx.get(f"{schema_registry_url}/schemas/ids/{2**31 - 1}", timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error_code"] == 40403  # what confluent-kafka reads as "not found"


def test_restart_keeps_schemas_and_ids_on_the_same_url(
    restartable_registry: LocalRegistry, subject_name: str
) -> None:
    url = restartable_registry.url
    schema_id = _register(url, subject_name)

    restartable_registry.restart()

    assert restartable_registry.url == url
    reply = httpx.get(f"{url}/schemas/ids/{schema_id}", timeout=10)
    assert reply.status_code == 200
    assert json.loads(reply.json()["schema"]) == _SCHEMA
    assert _register(url, subject_name) == schema_id  # the same schema again: the same id


def test_after_a_kill_it_starts_again(restartable_registry: LocalRegistry) -> None:
    assert restartable_registry.kill() == -9
    assert not restartable_registry.is_running
    with pytest.raises(httpx.TransportError):
        httpx.get(restartable_registry.url + "/subjects", timeout=2)
    restartable_registry.ensure_running()
    assert httpx.get(restartable_registry.url + "/subjects", timeout=10).status_code == 200


@pytest.mark.schema_registry
def test_a_taken_port_fails_the_start_and_kills_the_jvm(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        registry = LocalRegistry(tmp_path, port=int(taken.getsockname()[1]), persistent=False)
        with pytest.raises(RegistryError, match="exited with code") as info:
            registry.start(timeout_s=90)
    assert "in use" in str(info.value)  # the tail of the log names the cause
    assert not registry.is_running


def test_the_command_stays_on_loopback_and_stores_under_the_work_dir(tmp_path: Path) -> None:
    jar = tmp_path / "runner.jar"
    persistent = LocalRegistry(tmp_path / "p", port=18081).command("java", jar)
    in_memory = LocalRegistry(tmp_path / "m", persistent=False).command("java", jar)
    assert "-Dquarkus.http.host=127.0.0.1" in persistent
    assert "-Dquarkus.http.port=18081" in persistent
    assert "-Dquarkus.http.port=0" in in_memory  # the first start picks a port
    db = tmp_path.resolve() / "p" / "data" / "registry"
    assert f"-Dapicurio.datasource.url=jdbc:h2:file:{db}" in persistent
    assert not [arg for arg in in_memory if "datasource" in arg]
    assert persistent[-2:] == ["-jar", str(jar)]


def test_the_url_is_unknown_before_the_first_start(tmp_path: Path) -> None:
    registry = LocalRegistry(tmp_path / uuid.uuid4().hex)
    with pytest.raises(RegistryError, match="once it has started"):
        _ = registry.url
    assert registry.stop() is None  # never started: nothing to do
