"""Local Schema Registry (Apicurio Registry 3.0.9) for development and tests.

Its distribution is fetched with Maven into a cache outside the repository
(:func:`ensure_registry_dist`); :class:`LocalRegistry` runs one as a child JVM on loopback and
exposes the Confluent-compatible URL (``.../apis/ccompat/v7``) that confluent-kafka's
``SchemaRegistryClient`` and its Avro, Protobuf and JSON Schema serializers use.
Command line: ``python -m devstack.registry fetch`` and ``python -m devstack.registry run``.
"""

from devstack.registry.dist import APICURIO_VERSION, dist_dir, ensure_registry_dist
from devstack.registry.server import CCOMPAT_PATH, LocalRegistry, RegistryError

__all__ = [
    "APICURIO_VERSION",
    "CCOMPAT_PATH",
    "LocalRegistry",
    "RegistryError",
    "dist_dir",
    "ensure_registry_dist",
]
