"""What the e-Doręczenia User Agent API 3.0.8 expects and answers, as pure functions.

The contract is ``wsdl/edoreczenia/uaapi_3.0.8.1.yaml`` (OpenAPI 3.0.3, served under
``/api/v1``). Request bodies are built here from the hub's values and answers are parsed
into small frozen values; nothing here does I/O, so all of it is unit-tested.

Where the contract is silent the hub decides, and says so:

* ``Message.messageMetadata.to`` has no ``maxItems``; the hub sends to at most
  :data:`MAX_RECIPIENTS` addressees (adresaci) per message.
* ``eDeliveryAddress`` is a bare string in the contract; the hub requires the ADE form
  (adres do doręczeń elektronicznych) ``AE:PL-XXXXX-XXXXX-XXXXX-XX``.
* ``FileData.file`` is a bare string with no ``format: byte``; JSON can carry bytes only
  as text, so the content travels base64-encoded.
* ``FileMetadata.alg`` allows only "SHA-3" but names neither the length nor the encoding
  of ``hash``; the hub uses SHA3-256 in lowercase hex.

Answer-shape problems raise :class:`AnswerShapeError` (a ``ValueError``); the client
turns them into ``PermanentDeliveryError`` at its one translation boundary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from hub.errors import SchemaViolation
from hub.region import EDORECZENIA_ADDRESS

MAX_RECIPIENTS = 15
#: ``MessageMetadata.shippingService``: PURDE (electronic), not PUH (hybrid, on paper).
SHIPPING_ELECTRONIC = "electronic"
HASH_ALGORITHM = "SHA-3"
INBOX_LABEL = "INBOX"

#: Evidence (dowód) codes of ``Evidence.type``, with what each attests. A/B/C/D/E follow
#: ETSI EN 319 522 (registered electronic delivery); BP.* and H.* belong to the hybrid
#: service PUH (publiczna usługa hybrydowa), where the letter is printed and posted.
EVIDENCE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "A.1": "dowód wysłania: submission accepted by the sender's provider",
        "A.2": "submission rejected by the sender's provider",
        "B.1": "relay accepted by the recipient's provider",
        "B.2": "relay rejected by the recipient's provider",
        "B.3": "relay failed",
        "C.2": "relay to an external system failed",
        "D": "content consigned to the addressee's box",
        "D.1": "content consigned to the addressee's box (skrzynka)",
        "D.2": "content consignment failed",
        "D.3": "content consignment failed",
        "E.1": "dowód otrzymania: content handed over to the addressee (opened or deemed)",
        "E.2": "content handover failed",
        "BP.WX": "hybrid: sent, electronic part",
        "BP.WP": "hybrid: sent, paper part",
        "BP.OX": "hybrid: received, electronic part",
        "BP.OP": "hybrid: received, paper part",
        "H.DW": "hybrid: dowód wysłania",
        "H.PN": "hybrid: przyjęcie do nadania (accepted for posting)",
        "H.EPO": "hybrid: elektroniczne potwierdzenie odbioru (electronic return receipt)",
    }
)
# The contract's enum lists most codes twice, with and without the dot ("A1" and "A.1").
_DOTTED_KINDS: Mapping[str, str] = MappingProxyType(
    {kind.replace(".", ""): kind for kind in EVIDENCE_KINDS}
)


class AnswerShapeError(ValueError):
    """An answer of the UA API lacks what the contract promises."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One evidence (dowód) of a message's journey, with the document that proves it.

    ``kind`` is the dotted code (``A.1``, ``D.1``, ``E.1``, ...) even where the service
    answered the undotted spelling the contract also allows.
    """

    kind: str
    issued_at: datetime
    document: bytes
    evidence_id: str
    message_id: str
    recipient: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceEntry:
    """An evidence as listed, before its document is downloaded."""

    kind: str
    issued_at: datetime
    evidence_id: str
    message_id: str
    recipient: str = ""

    def with_document(self, document: bytes) -> Evidence:
        """The complete :class:`Evidence` once ``document`` has been downloaded."""
        return Evidence(
            kind=self.kind,
            issued_at=self.issued_at,
            document=document,
            evidence_id=self.evidence_id,
            message_id=self.message_id,
            recipient=self.recipient,
        )


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A message as ``GET /{eDeliveryAddress}/messages?format=metadata`` lists it."""

    message_id: str
    labels: frozenset[str]


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment (załącznik) as a message in ``full`` format describes it, without content."""

    attachment_id: str
    order: int
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message read in ``full`` format: who sent it, when, and what it carries."""

    message_id: str
    sender: str
    subject: str
    submitted_at: datetime | None
    attachments: tuple[AttachmentInfo, ...]
    text_body: str = ""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What a sending task (zadanie wysłania) became, per addressee."""

    message_ids: tuple[str, ...]
    refusals: tuple[str, ...]


def validate_address(address: str, role: str = "recipient") -> str:
    """Check that ``address`` is an ADE of the form ``AE:PL-XXXXX-XXXXX-XXXXX-XX``.

    Args:
        address: the address to check; surrounding blanks are removed.
        role: what the address is for, named in the error ("recipient", "sender").

    Returns:
        The address without surrounding blanks.

    Raises:
        SchemaViolation: the address is not an e-Doręczenia address.
    """
    cleaned = address.strip()
    if not EDORECZENIA_ADDRESS.match(cleaned):
        raise SchemaViolation(
            f"{role} {cleaned!r} is not an e-Doręczenia address (AE:PL-XXXXX-XXXXX-XXXXX-XX)",
            path=role,
        )
    return cleaned


def validate_recipients(recipients: Sequence[str]) -> tuple[str, ...]:
    """Check the addressees of one message: 1 to 15 distinct ADE addresses.

    Args:
        recipients: the addressees, in the order given.

    Returns:
        The cleaned addresses, duplicates removed, order kept.

    Raises:
        SchemaViolation: none given, more than :data:`MAX_RECIPIENTS`, or one malformed.
    """
    cleaned = tuple(dict.fromkeys(validate_address(item) for item in recipients if item.strip()))
    if not cleaned:
        raise SchemaViolation("a message needs at least one recipient", path="recipients")
    if len(cleaned) > MAX_RECIPIENTS:
        raise SchemaViolation(
            f"{len(cleaned)} recipients; one message goes to at most {MAX_RECIPIENTS}",
            path="recipients",
        )
    return cleaned


def sha3_hex(content: bytes) -> str:
    """The SHA3-256 digest of ``content`` in lowercase hex (``FileMetadata.hash``)."""
    return hashlib.sha3_256(content).hexdigest()


def message_request(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: bytes,
    filename: str,
    content_type: str,
    file_id: str,
    additional_data: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /{eDeliveryAddress}/messages`` (schema ``Message``).

    ``shippingService`` is the one field the contract requires; the document travels as
    the single attachment, inline, with the metadata ``FileMetadata`` requires (``fileId``).

    Returns:
        A JSON-ready mapping.
    """
    metadata: dict[str, Any] = {
        "from": {"eDeliveryAddress": sender},
        "to": [{"eDeliveryAddress": recipient} for recipient in recipients],
        "subject": subject,
        "shippingService": SHIPPING_ELECTRONIC,
    }
    if additional_data:
        metadata["additionalData"] = dict(additional_data)
    file_metadata = {
        "fileId": file_id,
        "filename": filename,
        "contentType": content_type,
        "size": len(body),
        "alg": HASH_ALGORITHM,
        "hash": sha3_hex(body),
    }
    return {
        "messageMetadata": metadata,
        "attachments": [
            {
                "order": 1,
                "file": {
                    "fileMetadata": file_metadata,
                    "file": base64.b64encode(body).decode("ascii"),
                },
            }
        ],
    }


def message_task_id(answer: Any) -> str:
    """The ``messageTaskId`` of a ``202`` answer to ``POST .../messages`` (``MessageInfo``).

    Raises:
        AnswerShapeError: the answer names no task.
    """
    task_id = _mapping(answer, "MessageInfo").get("messageTaskId")
    if not isinstance(task_id, str) or not task_id:
        raise AnswerShapeError("the answer to POST messages carries no messageTaskId")
    return task_id


def task_finished(answer: Any) -> bool:
    """Whether ``GET .../messages/tasks/{id}/status`` (``MessageTaskStatus``) says FINISHED."""
    status = _mapping(answer, "MessageTaskStatus").get("messageTaskStatus")
    if status not in {"FINISHED", "PENDING"}:
        raise AnswerShapeError(f"unknown messageTaskStatus {status!r}")
    return bool(status == "FINISHED")


def task_outcome(answer: Any) -> TaskOutcome:
    """Message ids and refusals from ``GET .../messages/tasks/{id}`` (one entry per addressee).

    Raises:
        AnswerShapeError: the answer is not a list of entries, or an entry has neither a
            message id nor an error.
    """
    message_ids: list[str] = []
    refusals: list[str] = []
    for entry in _list(answer, "MessageOperationResponseStatus"):
        item = _mapping(entry, "MessageOperationResponseWrapperStatus")
        if item.get("error"):
            addressee = _address_of(item.get("addressee")) or str(item.get("addresseeAde", ""))
            refusals.append(f"{addressee}: {item['error']} {item.get('error_description', '')}")
        elif isinstance(item.get("messageId"), str) and item["messageId"]:
            message_ids.append(item["messageId"])
        else:
            raise AnswerShapeError("a task entry has neither messageId nor error")
    return TaskOutcome(tuple(dict.fromkeys(message_ids)), tuple(refusals))


def message_summaries(answer: Any) -> tuple[list[MessageSummary], int]:
    """The messages of one page of ``MessagesWrapper``, and ``total`` (``resultSize`` if absent).

    Raises:
        AnswerShapeError: ``messages`` missing or an entry without ``messageId``.
    """
    wrapper = _mapping(answer, "MessagesWrapper")
    summaries = [_summary(item) for item in _list(wrapper.get("messages"), "messages")]
    total = wrapper.get("total", wrapper.get("resultSize", len(summaries)))
    return summaries, int(total)


def received_message(answer: Any) -> ReceivedMessage:
    """Parse the answer of ``GET /{eDeliveryAddress}/messages/{messageId}?format=full``.

    The contract answers an array (``messageId`` is an array parameter); one id was asked.

    Raises:
        AnswerShapeError: not exactly one message, or no ``messageId``.
    """
    messages = _list(answer, "Message[]")
    if len(messages) != 1:
        raise AnswerShapeError(f"expected one message, got {len(messages)}")
    message = _mapping(messages[0], "Message")
    metadata = _mapping(message.get("messageMetadata"), "MessageMetadata")
    submitted = metadata.get("submissionDate") or metadata.get("timestamp")
    return ReceivedMessage(
        message_id=_required_text(metadata, "messageId"),
        sender=_address_of(metadata.get("from")),
        subject=str(metadata.get("subject", "")),
        submitted_at=parse_timestamp(submitted) if submitted else None,
        attachments=tuple(
            sorted(
                (_attachment_info(item) for item in message.get("attachments") or []),
                key=lambda attachment: attachment.order,
            )
        ),
        text_body=str(message.get("textBody") or ""),
    )


def attachment_content(answer: Any) -> bytes:
    """The bytes of an ``Attachment`` answer, checked against its SHA-3 hash when given.

    Raises:
        AnswerShapeError: no content, content not base64, or content not matching its hash.
    """
    file_data = _mapping(_mapping(answer, "Attachment").get("file"), "FileData")
    encoded = file_data.get("file")
    if not isinstance(encoded, str):
        raise AnswerShapeError("the attachment carries no file content")
    try:
        content = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise AnswerShapeError(f"attachment content is not base64: {exc}") from exc
    metadata = file_data.get("fileMetadata") or {}
    expected = metadata.get("hash")
    if expected and metadata.get("alg") == HASH_ALGORITHM and expected != sha3_hex(content):
        raise AnswerShapeError("attachment content does not match its SHA-3 hash")
    return content


def evidence_entries(answer: Any) -> list[EvidenceEntry]:
    """The evidences of an ``EvidenceWrapper`` answer, oldest event first.

    Raises:
        AnswerShapeError: an entry lacks its id, its type or both of its dates.
    """
    wrapper = _mapping(answer, "EvidenceWrapper")
    entries = [parse_evidence_entry(item) for item in wrapper.get("evidences") or []]
    return sorted(entries, key=lambda entry: entry.issued_at)


def parse_evidence_entry(item: Any) -> EvidenceEntry:
    """Parse one ``Evidence`` object; ``issued_at`` is its event time, else its creation time.

    Raises:
        AnswerShapeError: see :func:`evidence_entries`.
    """
    evidence = _mapping(item, "Evidence")
    moment = evidence.get("eventDate") or evidence.get("createDate")
    if not moment:
        raise AnswerShapeError("an evidence has neither eventDate nor createDate")
    return EvidenceEntry(
        kind=canonical_evidence_kind(_required_text(evidence, "type")),
        issued_at=parse_timestamp(moment),
        evidence_id=_required_text(evidence, "evidenceId"),
        message_id=_required_text(evidence, "messageId"),
        recipient=_address_of(evidence.get("to")),
    )


def canonical_evidence_kind(code: str) -> str:
    """The dotted spelling of an evidence code: ``A1`` → ``A.1``; unknown codes unchanged."""
    return _DOTTED_KINDS.get(code, code)


def parse_timestamp(value: Any) -> datetime:
    """Parse an RFC 3339 ``date-time`` (``2017-07-21T17:32:28Z``) into an aware datetime.

    Raises:
        AnswerShapeError: not a string in that form.
    """
    if not isinstance(value, str):
        raise AnswerShapeError(f"expected a date-time string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise AnswerShapeError(f"not an RFC 3339 date-time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def json_patch_add_label(label: str) -> list[dict[str, Any]]:
    """The body of ``PATCH .../message_control_data`` that adds ``label`` to a message.

    ``PatchBody`` is a JSON Patch of at most one operation; appending to ``/labels`` is
    the one change it allows that the contract does not reserve for the service.
    """
    return [{"op": "add", "path": "/labels/-", "value": {"label": label}}]


def _summary(item: Any) -> MessageSummary:
    message = _mapping(item, "Message")
    metadata = _mapping(message.get("messageMetadata"), "MessageMetadata")
    control = message.get("messageControlData") or {}
    labels = frozenset(
        str(label.get("label", "")) for label in control.get("labels") or [] if label
    )
    return MessageSummary(message_id=_required_text(metadata, "messageId"), labels=labels)


def _attachment_info(item: Any) -> AttachmentInfo:
    attachment = _mapping(item, "Attachment")
    metadata = (attachment.get("file") or {}).get("fileMetadata") or {}
    return AttachmentInfo(
        attachment_id=_required_text(attachment, "attachmentId"),
        order=int(attachment.get("order", 0)),
        filename=str(metadata.get("filename", "")),
        content_type=str(metadata.get("contentType", "application/octet-stream")),
    )


def _address_of(data: Any) -> str:
    if isinstance(data, Mapping):
        return str(data.get("eDeliveryAddress", ""))
    return ""


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise AnswerShapeError(f"answer lacks {key!r}")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnswerShapeError(f"expected a {what} object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise AnswerShapeError(f"expected a list for {what}, got {type(value).__name__}")
    return value
