"""The librdkafka settings every Kafka client of the service shares (processor and redrive).

Built from the settings; the secrets in them are registered for redaction, and librdkafka's
own messages go through the service's JSON logging.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from service.adapters.logs import REDACT
from service.entry.settings import Settings

LIBRDKAFKA_LOGGER = "librdkafka"


def kafka_common_config(settings: Settings, client: str) -> dict[str, Any]:
    """librdkafka settings every client of the service shares; its secrets are redacted."""
    common: dict[str, Any] = {
        **settings.kafka_client_config(),
        "client.id": f"{client}-{socket.gethostname()}",
        # librdkafka's own messages (connection failures, config warnings) go through
        # logging as JSON lines, redacted, instead of plain text on stderr; served by poll().
        "logger": logging.getLogger(LIBRDKAFKA_LOGGER),
    }
    for secret in ("sasl.password", "ssl.key.password"):
        REDACT.add(str(common.get(secret) or ""))
    for key, value in settings.kafka_extra_config.items():
        if any(word in key for word in _SECRET_WORDS):
            REDACT.add(str(value))
    return common


_SECRET_WORDS = ("password", "secret", "token", "jaas")
