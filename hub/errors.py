"""The hub's one exception tree, and what happens to a message under each branch.

::

    HubError
    ├── ConfigurationError          → the process refuses to start; fix the settings
    │   └── RegionInvalid           (names the table and key of the region file at fault)
    ├── BrokerUnavailable           → the process waits and reconnects; nothing is lost
    ├── StoreUnavailable            → the unit of work is retried; nothing is acked
    ├── InboundUnavailable          → a polled channel failed; polled again next round
    ├── ClientRegistryError         → a client command changes nothing (unknown or taken name)
    ├── RejectedInput               → the caller gets a clear fault; nothing is queued
    │   ├── MalformedDocument       (not XML, not parseable)
    │   ├── SchemaViolation         (carries the path of the offending element)
    │   ├── SignatureInvalid
    │   ├── UnroutableDocument      (nobody handles this document for that office)
    │   └── CaseNotFound            (names a case that is not the caller's office's)
    ├── MappingError                → dead letter
    └── DeliveryError
        ├── TransientDeliveryError  → retried with backoff
        └── PermanentDeliveryError  → dead letter

Each error carries a short machine-readable ``code`` that callers can act on (SOAP
fault detail, HTTP problem ``type``), and a human ``reason``.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    code = "hub-error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigurationError(HubError):
    """Settings or routing configuration are wrong; the process cannot start."""

    code = "configuration"


class RegionInvalid(ConfigurationError):
    """A region file's table is wrong; ``table``, ``index`` and ``key`` say which one.

    TOML parsers report only syntax errors with a line; the loader turns this location
    (the ``index``-th ``[[table]]``, its ``key``) into a line of the file.
    """

    code = "region-invalid"

    def __init__(self, reason: str, table: str, index: int, key: str | None = None) -> None:
        super().__init__(reason)
        self.table = table
        self.index = index
        self.key = key


class BrokerUnavailable(HubError):
    """RabbitMQ cannot be reached or refused us; wait and reconnect."""

    code = "broker-unavailable"


class StoreUnavailable(HubError):
    """The database cannot be reached; the unit of work is retried, nothing is acked."""

    code = "store-unavailable"


class InboundUnavailable(HubError):
    """A channel the hub pulls from (a national inbox) failed; nothing was taken from it."""

    code = "inbound-unavailable"


class ClientRegistryError(HubError):
    """A change to the client registry cannot be made as asked; nothing was changed."""

    code = "client-registry"


class RejectedInput(HubError):
    """The input can never be processed as sent; the caller is told why."""

    code = "rejected-input"


class MalformedDocument(RejectedInput):
    """The document is not well-formed or cannot be parsed at all."""

    code = "malformed-document"


class SchemaViolation(RejectedInput):
    """The document is well-formed but breaks its schema at ``path``."""

    code = "schema-violation"

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{reason} (at {path})" if path else reason)
        self.path = path


class SignatureInvalid(RejectedInput):
    """A signature the route requires is missing or does not verify."""

    code = "signature-invalid"


class UnroutableDocument(RejectedInput):
    """No route handles this document type for this addressee."""

    code = "unroutable"


class CaseNotFound(RejectedInput):
    """The document names a case that does not exist or belongs to another office.

    Both are answered alike, so a caller learns nothing of other offices' cases.
    """

    code = "case-not-found"


class MappingError(HubError):
    """A document could not be translated for its destination; dead-lettered."""

    code = "mapping-failed"


class DeliveryError(HubError):
    """Delivery to a destination endpoint failed."""

    code = "delivery-failed"


class TransientDeliveryError(DeliveryError):
    """The destination may accept it later (timeout, 5xx, connection refused)."""

    code = "delivery-transient"

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentDeliveryError(DeliveryError):
    """The destination will never accept it as sent (4xx, contract violation)."""

    code = "delivery-permanent"
