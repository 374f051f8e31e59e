"""The service's exception tree. Owns error types only; raises nothing itself.

    ServiceError
    ├── ConfigError              a setting is missing or wrong (start-up stops)
    ├── HubSpotError             a request to HubSpot did not succeed
    │   ├── TransientHubSpotError    5xx, 423, 477, timeouts, connection errors: retry
    │   └── AuthError                401/403: credentials, not events, are wrong
    ├── DeliveryError            the broker refused a result or dead-letter record
    ├── CommitError              an offset commit failed (retried at the next interval)
    ├── TransactionError         a Kafka transaction failed and was aborted (exactly_once)
    ├── CallAbortedError         the service is stopping hard: a batch is abandoned
    ├── SchemaRegistryUnavailableError  the registry cannot be reached or answers 5xx: the
    │                                   event waits (its partition pauses), never marked
    └── UnreadableEventError     a record no registry format reads (its category says why)

Third-party exceptions are translated at the adapter boundary (`raise ... from exc`).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Root of every error the service raises on purpose."""


class ConfigError(ServiceError):
    """A setting is missing or invalid; the message is one line naming the variable."""


class HubSpotError(ServiceError):
    """A request to HubSpot failed; carries what the response said."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.retry_after_s = retry_after_s


class TransientHubSpotError(HubSpotError):
    """The outcome is unknown or the server is busy: resend the same inputs later."""


class AuthError(HubSpotError):
    """HubSpot refused the credentials (401) or their scopes (403)."""


class DeliveryError(ServiceError):
    """A result or dead-letter record could not be delivered to Kafka."""


class CommitError(ServiceError):
    """An offset commit failed; the positions are committed again later."""


class TransactionError(ServiceError):
    """A Kafka transaction could not commit and was aborted; the service must restart."""


class CallAbortedError(ServiceError):
    """The service is stopping hard; the batch is abandoned (its offsets stay uncommitted)."""


class SchemaRegistryUnavailableError(ServiceError):
    """The Schema Registry could not give a record's schema for now (unreachable, a 5xx, a
    refusal of the credentials): the record is read again later, never marked anything."""


class UnreadableEventError(ServiceError):
    """A record cannot be read: not in the registry's wire format, a schema the registry says
    does not exist, or bytes that do not match their schema. `category` names which."""

    def __init__(self, category: str, message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
