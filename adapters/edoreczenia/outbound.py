"""Delivering decisions and letters through e-Doręczenia (the ``edoreczenia-rest`` kind).

The envelope's body becomes the single attachment of one message from the office's
address (``sender_address``) to the addressees in the ``edoreczenia-recipients`` header
(comma-separated ADEs, at most 15). The receipt's reference is the message id the
sending task reports.

The contract offers no idempotency key: nothing in ``Message`` lets the client name a
message so that a repeated POST is recognised. The hub therefore (a) never repeats the
POST in-call unless the connection was never made, (b) once the service answered 202,
never turns a later failure (reading the task) into a retry, and (c) writes its envelope
and correlation ids into ``messageMetadata.additionalData``, so a duplicate caused by a
lost 202 can at least be traced.

The evidences issued while sending (A.1, D.1) are kept with the delivery, each checked
against the provider's pinned certificate (:mod:`adapters.edoreczenia.evidences`); one
that fails is quarantined, not kept. The delivery then awaits the dowód otrzymania
(E.1, content handed over to the addressee), which arrives on its own through the
webhook; until a verified one is kept the delivery shows as late past the receipt
deadline.

Endpoint options: ``token_url``, ``client_id``, ``client_secret``, ``sender_address``
(required); ``task_wait_s`` (how long to wait for the message id, default 5);
``platform_certificate`` (the provider's certificate, default
``<trust_store_dir>/platforms/edoreczenia.pem``).
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Sequence

from adapters.edoreczenia.client import (
    CLIENT_OPTIONS,
    DEFAULT_TASK_WAIT_S,
    EDoreczeniaClient,
    required_options,
)
from adapters.edoreczenia.contract import validate_address
from adapters.edoreczenia.evidences import KIND_PREFIX, pinned_provider_trust, verified_receipt
from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentDeliveryError,
    SchemaViolation,
)
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.region import EndpointConfig
from hub.settings import Settings
from hub.signing.trust import TrustStore

log = get_logger(__name__)

RECIPIENTS_HEADER = "edoreczenia-recipients"
DEFAULT_SUBJECT = "Pismo urzędowe"  # an official letter
#: The receipt a delivery awaits: the dowód otrzymania (content handed over).
AWAITED_EVIDENCE = f"{KIND_PREFIX} E.1"


class EDoreczeniaOutbound:
    """The ``edoreczenia-rest`` outbound kind: one office's mailbox sending to addressees."""

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        """Check the endpoint's options; the client is built in :meth:`setup`.

        Raises:
            ConfigurationError: an option is missing, or the sender is not an ADE.
        """
        self._endpoint = endpoint
        self._options = required_options(
            endpoint.name, endpoint.options, (*CLIENT_OPTIONS, "sender_address")
        )
        self._timeout_s = endpoint.timeout_s or settings.delivery_timeout_s
        try:
            self._sender = validate_address(self._options["sender_address"], role="sender")
        except SchemaViolation as exc:
            raise ConfigurationError(f"endpoint {endpoint.name}: {exc.reason}") from exc
        self._client: EDoreczeniaClient | None = None
        self._settings = settings
        self._trust: TrustStore | None = None

    def setup(self) -> None:
        """Read the provider's pinned certificate; build the UA API client (not connected yet).

        Raises:
            ConfigurationError: the provider's certificate is missing.
        """
        self._trust = pinned_provider_trust(
            self._settings.trust, self._endpoint.options, f"endpoint {self._endpoint.name}"
        )
        self._client = EDoreczeniaClient(
            self._endpoint.url,
            self._options["token_url"],
            client_id=self._options["client_id"],
            client_secret=self._options["client_secret"],
            timeout_s=self._timeout_s,
            task_wait_s=float(self._options.get("task_wait_s", DEFAULT_TASK_WAIT_S)),
        )

    def stop(self) -> None:
        """Close the client's HTTP sessions."""
        if self._client is not None:
            self._client.close()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Send ``envelope`` as a message; return the message id as the reference.

        Raises:
            TransientDeliveryError: the service is unavailable, timed out or throttles.
            PermanentDeliveryError: no or malformed addressees, or the service refused.
        """
        assert self._client is not None, "setup() was not called"
        started = time.monotonic()
        try:
            sent = self._client.send_message(
                self._sender,
                recipients_of(envelope),
                subject=envelope.headers.get("subject", DEFAULT_SUBJECT),
                body_bytes=envelope.body,
                filename=filename_of(envelope),
                content_type=envelope.content_type,
                additional_data=trace_data(envelope),
            )
        except SchemaViolation as exc:
            # The addressees come with the envelope: it can never be sent as it is.
            raise PermanentDeliveryError(f"{self._endpoint.name}: {exc.reason}") from exc
        log.info(
            "edoreczenia_message_sent",
            endpoint=self._endpoint.name,
            message_task_id=sent.message_task_id,
            message_ids=list(sent.message_ids),
            duration_s=round(time.monotonic() - started, 3),
        )
        return DeliveryReceipt(
            endpoint=self._endpoint.name,
            external_reference=sent.reference,
            evidence=self._evidence_so_far(sent.message_ids),
            awaits=AWAITED_EVIDENCE,
        )

    def _evidence_so_far(self, message_ids: Sequence[str]) -> tuple[Evidence, ...]:
        """The evidences issued by now (proof of submission), kept with the delivery.

        The message is sent whatever happens here: a failure to read evidences is
        logged, never raised, so it cannot make the hub send the message again.
        """
        assert self._client is not None
        assert self._trust is not None
        found: list[Evidence] = []
        for message_id in message_ids:
            try:
                issued = self._client.evidences(self._sender, message_id)
            except DeliveryError as exc:
                log.warning("edoreczenia_evidence_unread", message_id=message_id, reason=exc.reason)
                continue
            found += [verified_receipt(item, self._trust) for item in issued]
        return tuple(found)


def recipients_of(envelope: Envelope) -> list[str]:
    """The addressees named in the ``edoreczenia-recipients`` header (comma-separated).

    Raises:
        SchemaViolation: the header is missing or empty.
    """
    recipients = [item.strip() for item in envelope.headers.get(RECIPIENTS_HEADER, "").split(",")]
    recipients = [item for item in recipients if item]
    if not recipients:
        raise SchemaViolation("the envelope names no addressee", path=RECIPIENTS_HEADER)
    return recipients


def filename_of(envelope: Envelope) -> str:
    """The attachment's file name: the ``filename`` header, else one made from the type."""
    if envelope.headers.get("filename"):
        return envelope.headers["filename"]
    base_type = envelope.content_type.split(";", maxsplit=1)[0].strip()
    extension = ".xml" if base_type.endswith("xml") else mimetypes.guess_extension(base_type)
    return f"pismo{extension or '.bin'}"


def trace_data(envelope: Envelope) -> dict[str, str]:
    """What the message carries in ``additionalData`` to lead back to the hub's envelope."""
    return {
        "hubEnvelopeId": str(envelope.envelope_id),
        "hubCorrelationId": envelope.correlation_id,
    }
