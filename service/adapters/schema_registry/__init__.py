"""The Schema Registry: reading Avro, Protobuf and JSON Schema records in the Confluent wire
format with confluent-kafka's registry client and deserializers (decoder), Protobuf without
generated classes (protobuf). Implements the core's EventDecoder port.
"""

from service.adapters.schema_registry.decoder import (
    RegistryConfig,
    RegistryDecoder,
    RegistryFormat,
    registry_client,
)

__all__ = ["RegistryConfig", "RegistryDecoder", "RegistryFormat", "registry_client"]
