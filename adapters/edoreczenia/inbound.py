"""Receiving messages from the offices' e-Doręczenia mailboxes (the ``edoreczenia-poll`` kind).

For each office with an e-Doręczenia address: list the INBOX, read each message in full
format, download its main document, hand it to ``accept``, and only then label it as
taken (``PATCH .../message_control_data``, label ``HUB_PRZYJETE``, "taken by the hub").
The external id ``edoreczenia:{address}:{messageId}`` lets the store recognise a message
seen before, so a crash between ``accept`` and the label, or the service listing a
message twice, never stores it twice; the label only spares later polls the download.
A message the service refuses to hand over (a 4xx, an attachment not matching its hash)
is skipped and reported, so it does not block the messages behind it.

Which attachment is the document: the first XML attachment, else the first by ``order``;
a message without attachments carries its ``textBody``. The hub's envelope has one body,
so further attachments are counted in a header but not carried.

Channel options: ``token_url``, ``client_id``, ``client_secret`` (required);
``timeout_s``, ``concurrency`` (mailboxes drained at once, default 4), ``processed_label``;
``webhook = true`` turns on the webhook receiver (:mod:`adapters.edoreczenia.webhook`),
which takes messages with the same code between polls.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from adapters.edoreczenia.client import CLIENT_OPTIONS, EDoreczeniaClient, required_options
from adapters.edoreczenia.contract import AttachmentInfo, ReceivedMessage
from hub.adapters import Accept
from hub.envelope import Address, Envelope
from hub.errors import (
    DeliveryError,
    InboundUnavailable,
    MalformedDocument,
    PermanentDeliveryError,
)
from hub.inbound import drain_in_parallel
from hub.logging import get_logger
from hub.region import InboundConfig, Office, Region
from hub.settings import Settings
from hub.xml import parse_document, root_namespace

log = get_logger(__name__)

SOURCE = "edoreczenia"
UNPARSEABLE_TYPE = "unparseable"
DEFAULT_PROCESSED_LABEL = "HUB_PRZYJETE"
TEXT_BODY_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class ReceivedDocument:
    """The document a message brings: its bytes and what the message says they are."""

    content: bytes
    content_type: str
    filename: str = ""


class EDoreczeniaPollingInbound:
    """Drains every office mailbox (skrzynka) of the region once per poll."""

    def __init__(self, channel: InboundConfig, region: Region, settings: Settings) -> None:
        """Check the channel's options and pick the offices that have an e-Doręczenia address.

        Raises:
            ConfigurationError: a required option is missing.
        """
        self._channel = channel
        self._options = required_options(channel.name, channel.options, CLIENT_OPTIONS)
        self._default_timeout_s = settings.delivery_timeout_s
        self._concurrency = int(self._options.get("concurrency", 4))
        self._processed_label = processed_label(self._options)
        self._offices = [office for office in region.offices.values() if office.edoreczenia_address]
        self._client: EDoreczeniaClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    def setup(self) -> None:
        """Build the UA API client and the pool of mailbox drainers."""
        self._client = channel_client(self._channel, self._default_timeout_s)
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="edoreczenia-poll")

    def stop(self) -> None:
        """Stop the drainers and close the client."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()

    def poll_once(self, accept: Accept) -> int:
        """Drain every mailbox once; a failing mailbox does not stop the others.

        Returns:
            How many messages were handed to ``accept``.

        Raises:
            InboundUnavailable: at least one mailbox could not be drained.
        """
        assert self._pool is not None, "setup() was not called"
        drains = {
            office.edoreczenia_address: functools.partial(self.drain_mailbox, office, accept)
            for office in self._offices
        }
        return drain_in_parallel(self._pool, drains)

    def drain_mailbox(self, office: Office, accept: Accept) -> int:
        """Hand every message waiting in ``office``'s INBOX to ``accept``; return how many.

        Raises:
            InboundUnavailable: the mailbox could not be listed or a message not read.
        """
        assert self._client is not None, "setup() was not called"
        address = office.edoreczenia_address
        with _translate_errors(address):
            waiting = [
                summary.message_id
                for summary in self._client.list_messages(address)
                if self._processed_label not in summary.labels
            ]
            unreadable = [
                failure
                for message_id in waiting
                if (failure := self._take_or_skip(office, message_id, accept)) is not None
            ]
        if unreadable:
            raise InboundUnavailable(
                f"e-Doręczenia mailbox {address}: {len(unreadable)} message(s) could not be "
                f"read and wait for the next poll; first: {unreadable[0]}"
            )
        return len(waiting)

    def _take_or_skip(self, office: Office, message_id: str, accept: Accept) -> str | None:
        # One message the service cannot hand over must not block the rest of the mailbox;
        # a transient failure stops the mailbox (the next message would fail the same way).
        try:
            self._take(office, message_id, accept)
        except PermanentDeliveryError as exc:
            log.warning("edoreczenia_message_unreadable", message_id=message_id, reason=exc.reason)
            return f"{message_id}: {exc.reason}"
        return None

    def _take(self, office: Office, message_id: str, accept: Accept) -> None:
        assert self._client is not None
        take_message(self._client, office, message_id, accept, self._processed_label)


def channel_client(channel: InboundConfig, default_timeout_s: float) -> EDoreczeniaClient:
    """The UA API client an ``edoreczenia-poll`` channel's options describe.

    Raises:
        ConfigurationError: a required option is missing.
    """
    options = required_options(channel.name, channel.options, CLIENT_OPTIONS)
    return EDoreczeniaClient(
        channel.url,
        options["token_url"],
        client_id=options["client_id"],
        client_secret=options["client_secret"],
        timeout_s=float(options.get("timeout_s", default_timeout_s)),
    )


def processed_label(options: Mapping[str, Any]) -> str:
    """The label that marks a message taken by the hub (option ``processed_label``)."""
    return str(options.get("processed_label", DEFAULT_PROCESSED_LABEL))


def take_message(
    client: EDoreczeniaClient, office: Office, message_id: str, accept: Accept, label: str
) -> str:
    """Read one message of ``office``'s mailbox, hand it to ``accept``, then label it taken.

    Shared by polling and the webhook: both use the same external id, so a message seen
    by both is stored once, and the label is added only after ``accept`` returned.

    Returns:
        What ``accept`` answered (``accepted``, ``rejected``, ``duplicate``).

    Raises:
        TransientDeliveryError, PermanentDeliveryError: the message could not be read.
    """
    address = office.edoreczenia_address
    message = client.get_message(address, message_id)
    envelope, reason = inbound_envelope(office, message, read_document(client, address, message))
    outcome = accept(
        envelope,
        external_id=external_id(address, message_id),
        submitted_at=message.submitted_at,
        rejected_reason=reason,
    )
    log.info("edoreczenia_message_taken", message_id=message_id, outcome=outcome)
    mark_taken(client, address, message_id, label)
    return outcome


def read_document(
    client: EDoreczeniaClient, address: str, message: ReceivedMessage
) -> ReceivedDocument:
    """The document a message brings: its main attachment, else its text body.

    Raises:
        TransientDeliveryError, PermanentDeliveryError: the attachment could not be read.
    """
    attachment = main_attachment(message.attachments)
    if attachment is None:
        return ReceivedDocument(message.text_body.encode("utf-8"), TEXT_BODY_TYPE)
    content = client.download_attachment(address, message.message_id, attachment.attachment_id)
    return ReceivedDocument(content, attachment.content_type, attachment.filename)


def mark_taken(client: EDoreczeniaClient, address: str, message_id: str, label: str) -> None:
    """Label a stored message taken; a failure is only logged (see the module docstring)."""
    try:
        client.add_label(address, message_id, label)
    except DeliveryError as exc:
        # Stored already; the next poll offers it again and the store says "duplicate".
        log.warning("edoreczenia_label_failed", message_id=message_id, reason=exc.reason)


def external_id(address: str, message_id: str) -> str:
    """The store's deduplication key of a received message."""
    return f"edoreczenia:{address}:{message_id}"


def main_attachment(attachments: tuple[AttachmentInfo, ...]) -> AttachmentInfo | None:
    """The attachment that is the document: the first XML one, else the first by order."""
    ordered = sorted(attachments, key=lambda attachment: attachment.order)
    for attachment in ordered:
        if is_xml(attachment.content_type, attachment.filename):
            return attachment
    return ordered[0] if ordered else None


def is_xml(content_type: str, filename: str = "") -> bool:
    """Whether a MIME type (``application/xml``, ``text/xml``, ``*+xml``) or name says XML."""
    base_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    return base_type.endswith(("/xml", "+xml")) or filename.lower().endswith(".xml")


def document_type_of(document: ReceivedDocument) -> tuple[str, str | None]:
    """The hub's document type and, for XML that does not parse, the reason to reject it.

    XML is typed by its root namespace (a CRWDE template id for forms); anything else, and
    XML without a namespace, by its MIME type.
    """
    base_type = document.content_type.split(";", maxsplit=1)[0].strip()
    if not is_xml(document.content_type, document.filename):
        return base_type, None
    try:
        namespace = root_namespace(parse_document(document.content))
    except MalformedDocument as exc:
        return UNPARSEABLE_TYPE, f"{exc.code}: {exc.reason}"
    return namespace or base_type, None


def inbound_envelope(
    office: Office, message: ReceivedMessage, document: ReceivedDocument
) -> tuple[Envelope, str | None]:
    """The envelope for a received message, and the reason to reject it (None if acceptable)."""
    document_type, reason = document_type_of(document)
    headers = {
        "edoreczenia-message-id": message.message_id,
        "edoreczenia-sender": message.sender,
        "edoreczenia-address": office.edoreczenia_address,
        "edoreczenia-attachments": str(len(message.attachments)),
        "subject": message.subject,
    }
    if document.filename:
        headers["filename"] = document.filename
    envelope = Envelope(
        document_type=document_type,
        source=SOURCE,
        destination=Address(office.id),
        body=document.content,
        content_type=document.content_type,
        headers=headers,
    )
    return envelope, reason


@contextlib.contextmanager
def _translate_errors(address: str) -> Iterator[None]:
    try:
        yield
    except DeliveryError as exc:
        raise InboundUnavailable(f"e-Doręczenia mailbox {address}: {exc.reason}") from exc
