"""The simulated e-Doręczenia service: tokens, mailboxes (skrzynki), evidences, faults.

All of it lives in one :class:`SimulatorState` guarded by one lock; the Flask server is
threaded. Nothing here does I/O: webhook notifications are returned to the caller as
:class:`Notification` values for the server to post.

The journey of a message, as simulated:

1. ``send`` (POST messages) stores the sender's copy under SENT, one copy per addressee
   under the addressee's INBOX, a sending task (FINISHED unless configured otherwise),
   and for each addressee the evidences A.1 (dowód wysłania, submission accepted) and
   D.1 (consigned to the addressee's box), in that order, with increasing times.
2. The addressee reading its copy in ``full``/``fullExtended`` format opens it, which
   issues E.1 (dowód otrzymania: handed over) on the sender's message.

Evidence documents are small XML files, each with the provider's enveloped XAdES-BES
signature (:mod:`simulators.edoreczenia.signing`), standing for the ETSI REM evidences
the real provider signs. The fault ``forged_evidence`` makes the next download of an
evidence (of one type, if named) hand out a tampered copy, its signature left as it was.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from simulators.edoreczenia.signing import EvidenceSigner, tampered

#: An e-Doręczenia address (ADE): AE:PL-12345-67890-ABCDE-12.
ADE = re.compile(r"^AE:PL-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9]{2}$")
ALL_SCOPES = frozenset({"read_messages", "write_messages", "read_settings", "write_settings"})
INBOX, SENT = "INBOX", "SENT"
FAULT_KINDS = frozenset(
    {"http400", "http401", "http429", "http500", "delay", "list_twice", "forged_evidence"}
)
#: Faults that change what a call answers rather than whether it is answered: taken by
#: the operation itself, never by the guard in front of every call.
CONTENT_FAULTS = frozenset({"forged_evidence"})
EVIDENCE_NAMESPACE = "urn:simulator:edoreczenia:dowod"
DEFAULT_TOKEN_LIFETIME_S = 300.0


class Refusal(Exception):
    """The service refuses a request it understood: a 400 with ``ErrorInfo``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An access token the token endpoint issued."""

    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class Fault:
    """A misbehaviour armed for the next ``times`` matching API calls."""

    kind: str
    times: int = 1
    method: str = ""
    path_contains: str = ""
    retry_after_s: int = 1
    delay_s: float = 0.0
    #: For ``forged_evidence``: only an evidence of this type (``E.1``); empty: any.
    evidence_type: str = ""

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a call of ``method`` on ``path``.

        ``list_twice`` only makes sense for a listing (``GET .../messages``); content
        faults (``forged_evidence``) are taken by their operation, never here.
        """
        if self.kind in CONTENT_FAULTS:
            return False
        if self.kind == "list_twice" and not (method == "GET" and path.endswith("/messages")):
            return False
        return (not self.method or self.method.upper() == method.upper()) and (
            self.path_contains in path
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """A webhook call to make: the ``MessageStatement`` body and where to post it."""

    url: str
    body: Mapping[str, Any]


@dataclass
class StoredAttachment:
    """One attachment (załącznik) of a stored message."""

    attachment_id: str
    order: int
    file_id: str
    filename: str
    content_type: str
    content: bytes

    def as_json(self, *, with_content: bool) -> dict[str, Any]:
        """The contract's ``Attachment``; the content (base64) only when asked for."""
        file_data: dict[str, Any] = {
            "fileMetadata": {
                "fileId": self.file_id,
                "filename": self.filename,
                "contentType": self.content_type,
                "size": len(self.content),
                "alg": "SHA-3",
                "hash": hashlib.sha3_256(self.content).hexdigest(),
            }
        }
        if with_content:
            file_data["file"] = base64.b64encode(self.content).decode("ascii")
        return {"order": self.order, "attachmentId": self.attachment_id, "file": file_data}


@dataclass
class StoredEvidence:
    """One evidence (dowód) issued for the sender's message, addressee by addressee."""

    evidence_id: str
    kind: str
    message_id: str
    sender: str
    recipient: str
    event_at: datetime
    document: bytes
    downloaded: bool = False

    def as_json(self) -> dict[str, Any]:
        """The contract's ``Evidence``."""
        return {
            "evidenceId": self.evidence_id,
            "messageId": self.message_id,
            "type": self.kind,
            "createDate": rfc3339(self.event_at),
            "eventDate": rfc3339(self.event_at),
            "downloaded": self.downloaded,
            "from": {"eDeliveryAddress": self.sender},
            "to": {"eDeliveryAddress": self.recipient},
        }


@dataclass
class StoredMessage:
    """One copy of a message in one mailbox: the sender's (SENT) or an addressee's (INBOX)."""

    message_id: str
    owner: str
    labels: list[str]
    sender: str
    recipients: list[str]
    subject: str
    text_body: str
    attachments: list[StoredAttachment]
    created_at: datetime
    thread_id: str
    additional_data: dict[str, str] = field(default_factory=dict)
    status: str = "Wysłana"
    opened: bool = False
    #: Submission time from the A.1 evidence (``submissionDate``); creation time until then.
    submitted_at: datetime | None = None
    #: For an addressee's copy: the id of the sender's copy, which holds the evidences.
    original_id: str = ""
    evidences: list[StoredEvidence] = field(default_factory=list)

    def as_json(self, message_format: str) -> dict[str, Any]:
        """The contract's ``Message`` in one of its formats (minimal ... fullExtended)."""
        metadata: dict[str, Any] = {"messageId": self.message_id, "shippingService": "electronic"}
        message: dict[str, Any] = {"messageMetadata": metadata}
        if message_format == "minimal":
            return message
        metadata.update(
            {
                "from": {"eDeliveryAddress": self.sender},
                "to": [{"eDeliveryAddress": recipient} for recipient in self.recipients],
                "subject": self.subject,
                "threadId": self.thread_id,
                "timestamp": rfc3339(self.created_at),
                "submissionDate": rfc3339(self.submitted_at or self.created_at),
                "eventDate": rfc3339(self.submitted_at or self.created_at),
            }
        )
        message["messageControlData"] = {
            "opened": self.opened,
            "status": self.status,
            "messageType": "Message",
            "labels": [{"label": label} for label in self.labels],
        }
        if message_format == "metadata":
            return message
        if self.additional_data:
            metadata["additionalData"] = dict(self.additional_data)
        if self.text_body:
            message["textBody"] = self.text_body
        message["attachments"] = [
            attachment.as_json(with_content=message_format == "fullExtended")
            for attachment in self.attachments
        ]
        message["evidences"] = [evidence.as_json() for evidence in self.evidences]
        return message


@dataclass
class SendingTask:
    """A sending task (zadanie wysłania): one entry per addressee."""

    task_id: str
    owner: str
    message_id: str
    recipients: list[str]
    pending_polls: int = 0

    def entries(self) -> list[dict[str, Any]]:
        """The contract's ``MessageOperationResponseWrapperStatus`` list.

        The schema requires ``addresseeAde`` and ``status`` without declaring them, so
        both are given.
        """
        return [
            {
                "messageId": self.message_id,
                "addressee": {"eDeliveryAddress": recipient},
                "addresseeAde": recipient,
                "status": "Nadana",
            }
            for recipient in self.recipients
        ]


@dataclass
class Subscription:
    """The callback URLs one mailbox subscribed (``SubscriptionCreate``)."""

    subscription_id: str
    callbacks: dict[str, str]


@dataclass
class IncomingDocument:
    """A document to put into a mailbox as if someone outside had sent it (admin API)."""

    filename: str
    content_type: str
    content: bytes


class SimulatorState:
    """Everything the simulated service knows, behind one lock."""

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S,
        clock: Callable[[], float] = time.monotonic,
        evidence_signer: EvidenceSigner | None = None,
    ) -> None:
        """Start empty.

        Args:
            clients: accepted OAuth2 clients (id → secret); None accepts any non-empty pair.
            token_lifetime_s: ``expires_in`` of each issued token.
            clock: monotonic seconds, for token expiry.
            evidence_signer: signs every evidence issued; by default a throwaway
                identity made at the first evidence.
        """
        self.lock = threading.RLock()
        self.evidence_signer = evidence_signer or EvidenceSigner()
        self.clients = dict(clients) if clients is not None else None
        self.token_lifetime_s = token_lifetime_s
        self.task_pending_polls = 0
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self.tokens: dict[str, IssuedToken] = {}
        self.messages: dict[str, StoredMessage] = {}
        self.evidences: dict[str, StoredEvidence] = {}
        self.tasks: dict[str, SendingTask] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.faults: list[Fault] = []
        self.stats: Counter[str] = Counter()
        self.request_violations: list[str] = []
        self.response_violations: list[str] = []
        self._last_moment = datetime.now(UTC)

    def reset(self) -> None:
        """Forget every token, message, evidence, subscription, fault and counter."""
        with self.lock:
            self._reset()

    def count(self, event: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``event`` (shown by ``/_sim/stats``)."""
        with self.lock:
            self.stats[event] += amount

    # --- OAuth2 -----------------------------------------------------------------------

    def issue_token(self, client_id: str, secret: str, scope: str) -> tuple[str, IssuedToken]:
        """Issue a token to a client with the client-credentials grant.

        Raises:
            Refusal: ``invalid_client`` or ``invalid_scope`` (RFC 6749 error codes).
        """
        wanted = frozenset(scope.split()) or ALL_SCOPES
        with self.lock:
            known = self.clients is None or self.clients.get(client_id) == secret
            if not client_id or not secret or not known:
                raise Refusal("invalid_client", "unknown client or wrong secret")
            if not wanted <= ALL_SCOPES:
                raise Refusal("invalid_scope", f"unknown scopes {sorted(wanted - ALL_SCOPES)}")
            token = f"sim-{uuid.uuid4().hex}"
            issued = IssuedToken(client_id, wanted, self._clock() + self.token_lifetime_s)
            self.tokens[token] = issued
            self.stats["tokens_issued"] += 1
            return token, issued

    def check_token(self, token: str) -> IssuedToken | None:
        """The token's grant if it was issued here and has not expired; else None."""
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None or self._clock() >= issued.expires_at:
                return None
            return issued

    def expire_tokens(self) -> int:
        """Make every issued token expired now; return how many there were."""
        with self.lock:
            now = self._clock()
            for token, issued in self.tokens.items():
                self.tokens[token] = IssuedToken(issued.client_id, issued.scopes, now)
            return len(self.tokens)

    # --- faults -----------------------------------------------------------------------

    def arm_fault(self, fault: Fault) -> None:
        """Arm ``fault`` for the next matching calls.

        Raises:
            Refusal: unknown fault kind.
        """
        if fault.kind not in FAULT_KINDS:
            raise Refusal("unknown_fault", f"kind must be one of {sorted(FAULT_KINDS)}")
        with self.lock:
            self.faults.append(fault)

    def next_fault(self, method: str, path: str) -> Fault | None:
        """The fault for this call, if one is armed for it, using one of its ``times``."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    self.stats[f"fault_{fault.kind}"] += 1
                    return fault
            return None

    # --- sending ----------------------------------------------------------------------

    def send(self, owner: str, message: Mapping[str, Any]) -> tuple[str, list[Notification]]:
        """Accept a ``Message`` sent from ``owner``'s mailbox; return the task id.

        Raises:
            Refusal: not an electronic (PURDE) shipment, the sender differs from the
                mailbox, an addressee is not an ADE, or an attachment's content is not
                base64 or does not match its hash.
        """
        metadata = message.get("messageMetadata") or {}
        if metadata.get("shippingService") != "electronic":
            raise Refusal("not_electronic", "the simulator delivers only electronically (PURDE)")
        recipients = _recipients(metadata)
        sender = str((metadata.get("from") or {}).get("eDeliveryAddress", owner))
        if sender != owner:
            raise Refusal("sender_mismatch", f"from {sender} differs from mailbox {owner}")
        attachments = _attachments(message.get("attachments") or [])
        with self.lock:
            original = self._store_copy(
                owner,
                SENT,
                sender=sender,
                recipients=recipients,
                metadata=metadata,
                attachments=attachments,
                text_body=str(message.get("textBody") or ""),
            )
            task = SendingTask(
                f"task-{uuid.uuid4()}",
                owner,
                original.message_id,
                recipients,
                pending_polls=self.task_pending_polls,
            )
            self.tasks[task.task_id] = task
            notifications = [self._deliver_copy(original, recipient) for recipient in recipients]
            self.stats["messages_sent"] += 1
            return task.task_id, [item for batch in notifications for item in batch]

    def inject(
        self,
        recipient: str,
        sender: str,
        subject: str,
        documents: Sequence[IncomingDocument],
        text_body: str = "",
    ) -> tuple[str, list[Notification]]:
        """Put a message from outside into ``recipient``'s INBOX; return its id there.

        Raises:
            Refusal: an address is not an ADE.
        """
        for address in (recipient, sender):
            _require_ade(address)
        attachments = [
            StoredAttachment(
                attachment_id=str(uuid.uuid4()),
                order=order,
                file_id=str(uuid.uuid4()),
                filename=document.filename,
                content_type=document.content_type,
                content=document.content,
            )
            for order, document in enumerate(documents, start=1)
        ]
        metadata = {"subject": subject}
        with self.lock:
            original = self._store_copy(
                sender,
                SENT,
                sender=sender,
                recipients=[recipient],
                metadata=metadata,
                attachments=attachments,
                text_body=text_body,
            )
            notifications = self._deliver_copy(original, recipient)
            copy_id = self._copies_of(original.message_id)[0].message_id
            self.stats["messages_injected"] += 1
            return copy_id, notifications

    def task(self, owner: str, task_id: str) -> SendingTask:
        """The sending task ``task_id`` of ``owner``.

        Raises:
            Refusal: no such task in that mailbox.
        """
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None or task.owner != owner:
                raise Refusal("task_not_found", f"no task {task_id} in {owner}")
            return task

    def task_status(self, owner: str, task_id: str) -> str:
        """``PENDING`` for the configured number of polls, then ``FINISHED``."""
        with self.lock:
            task = self.task(owner, task_id)
            if task.pending_polls > 0:
                task.pending_polls -= 1
                return "PENDING"
            return "FINISHED"

    # --- reading ----------------------------------------------------------------------

    def listing(self, owner: str, query: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """One page of ``owner``'s messages, filtered by ``label`` and ``opened``, and the total."""
        with self.lock:
            matching = [
                message
                for message in self.messages.values()
                if message.owner == owner
                and (not query.get("label") or query["label"] in message.labels)
                and (query.get("opened") is None or message.opened == query["opened"])
            ]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
            page = matching[offset : offset + limit]
            message_format = str(query.get("format", "minimal"))
            return [message.as_json(message_format) for message in page], len(matching)

    def read(
        self, owner: str, message_ids: Iterable[str], message_format: str
    ) -> tuple[list[dict[str, Any]], list[Notification]]:
        """Messages of ``owner`` by id; full formats open them and issue E.1 to their senders.

        Raises:
            Refusal: an id names no message of ``owner``.
        """
        with self.lock:
            messages = [self._message(owner, message_id) for message_id in message_ids]
            notifications: list[Notification] = []
            if message_format in {"full", "fullExtended"}:
                for message in messages:
                    notifications += self._open(message)
            return [message.as_json(message_format) for message in messages], notifications

    def attachment(self, owner: str, message_id: str, attachment_id: str) -> dict[str, Any]:
        """One attachment with its content.

        Raises:
            Refusal: no such message or attachment.
        """
        with self.lock:
            for attachment in self._message(owner, message_id).attachments:
                if attachment.attachment_id == attachment_id:
                    return attachment.as_json(with_content=True)
            raise Refusal("attachment_not_found", f"no attachment {attachment_id}")

    def patch_control_data(
        self, owner: str, message_ids: Iterable[str], patch: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Apply a one-operation JSON Patch to the labels of messages.

        Supported: ``add`` to ``/labels/-`` (a ``Label`` value) and ``remove`` of
        ``/labels/<index>``; opened and status are the service's own.

        Raises:
            Refusal: another operation, or an unknown message.
        """
        if len(patch) != 1:
            raise Refusal("bad_patch", "message control data takes exactly one patch operation")
        with self.lock:
            messages = [self._message(owner, message_id) for message_id in message_ids]
            for message in messages:
                _apply_label_patch(message, patch[0])
            return [
                {
                    "messageId": message.message_id,
                    "opened": message.opened,
                    "status": message.status,
                    "messageType": "Message",
                    "labels": [{"label": label} for label in message.labels],
                }
                for message in messages
            ]

    def evidences_of(
        self, owner: str, message_id: str, query: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The evidences of ``owner``'s message, filtered and sorted as ``query`` asks.

        Raises:
            Refusal: an unknown message.
        """
        with self.lock:
            evidences = [
                evidence
                for evidence in self._message(owner, message_id).evidences
                if (not query.get("type") or evidence.kind == query["type"])
                and (query.get("downloaded") is None or evidence.downloaded == query["downloaded"])
            ]
            evidences.sort(
                key=lambda evidence: evidence.event_at,
                reverse=query.get("sortDirection") == "desc",
            )
            return [evidence.as_json() for evidence in evidences]

    def evidence_document(self, owner: str, evidence_id: str) -> bytes:
        """The document of one evidence of ``owner``, now marked downloaded.

        Raises:
            Refusal: no such evidence for that mailbox.
        """
        with self.lock:
            evidence = self.evidences.get(evidence_id)
            if evidence is None or owner not in {evidence.sender, evidence.recipient}:
                raise Refusal("evidence_not_found", f"no evidence {evidence_id} for {owner}")
            evidence.downloaded = True
            if self._take_forgery(evidence.kind):
                return tampered(evidence.document, f"{{{EVIDENCE_NAMESPACE}}}czasZdarzenia")
            return evidence.document

    def mailbox(self, owner: str) -> list[StoredMessage]:
        """Every message copy in ``owner``'s mailbox, oldest first (for the admin API)."""
        with self.lock:
            return [message for message in self.messages.values() if message.owner == owner]

    # --- subscriptions ----------------------------------------------------------------

    def subscribe(self, owner: str, callbacks: Mapping[str, str]) -> str:
        """Store ``owner``'s callback URLs (replacing earlier ones); return the id."""
        with self.lock:
            subscription = Subscription(f"sub-{uuid.uuid4()}", dict(callbacks))
            self.subscriptions[owner] = subscription
            return subscription.subscription_id

    def subscription_list(self, owner: str) -> list[dict[str, Any]]:
        """The contract's ``Subscription`` list of ``owner``."""
        with self.lock:
            subscription = self.subscriptions.get(owner)
            if subscription is None:
                return []
            return [
                {"id": subscription.subscription_id, "name": name, "url": url, "status": True}
                for name, url in subscription.callbacks.items()
            ]

    def unsubscribe(self, owner: str) -> None:
        """Drop ``owner``'s subscription, if any."""
        with self.lock:
            self.subscriptions.pop(owner, None)

    # --- internals (called with the lock held) ----------------------------------------

    def _take_forgery(self, evidence_kind: str) -> bool:
        for fault in self.faults:
            if fault.kind == "forged_evidence" and fault.evidence_type in {"", evidence_kind}:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                self.stats["fault_forged_evidence"] += 1
                return True
        return False

    def _moment(self) -> datetime:
        # Strictly increasing, so evidences issued within one call keep their order.
        self._last_moment = max(datetime.now(UTC), self._last_moment + timedelta(microseconds=1))
        return self._last_moment

    def _store_copy(
        self,
        owner: str,
        label: str,
        *,
        sender: str,
        recipients: list[str],
        metadata: Mapping[str, Any],
        attachments: list[StoredAttachment],
        text_body: str,
    ) -> StoredMessage:
        message = StoredMessage(
            message_id=str(uuid.uuid4()),
            owner=owner,
            labels=[label],
            sender=sender,
            recipients=recipients,
            subject=str(metadata.get("subject", "")),
            text_body=text_body,
            attachments=attachments,
            created_at=self._moment(),
            thread_id=str(metadata.get("threadId") or uuid.uuid4()),
            additional_data=dict(metadata.get("additionalData") or {}),
        )
        self.messages[message.message_id] = message
        return message

    def _deliver_copy(self, original: StoredMessage, recipient: str) -> list[Notification]:
        notifications = self._issue(original, "A.1", recipient)
        original.submitted_at = original.evidences[-1].event_at
        copy = self._store_copy(
            recipient,
            INBOX,
            sender=original.sender,
            recipients=original.recipients,
            metadata={"subject": original.subject, "threadId": original.thread_id},
            attachments=original.attachments,
            text_body=original.text_body,
        )
        copy.original_id, copy.status = original.message_id, "Czeka na doręczenie"
        copy.submitted_at = original.submitted_at
        notifications += self._issue(original, "D.1", recipient)
        return notifications + self._notify(
            recipient, "messageCallbackUrl", "NewMessage", copy.message_id, copy.thread_id
        )

    def _open(self, message: StoredMessage) -> list[Notification]:
        if message.opened:
            return []
        message.opened = True
        original = self.messages.get(message.original_id)
        if original is None:
            return []
        message.status = "Doręczona"
        original.status = "Doręczona"
        return self._issue(original, "E.1", message.owner)

    def _issue(self, original: StoredMessage, kind: str, recipient: str) -> list[Notification]:
        evidence_id = str(uuid.uuid4())
        moment = self._moment()
        evidence = StoredEvidence(
            evidence_id=evidence_id,
            kind=kind,
            message_id=original.message_id,
            sender=original.sender,
            recipient=recipient,
            event_at=moment,
            document=self.evidence_signer.sign(
                evidence_document(kind, evidence_id, original, recipient, moment)
            ),
        )
        original.evidences.append(evidence)
        self.evidences[evidence_id] = evidence
        self.stats[f"evidence_{kind}"] += 1
        return self._notify(original.owner, "evidenceCallbackUrl", "NewEvidence", evidence_id, kind)

    def _notify(
        self, owner: str, callback: str, notification_type: str, object_id: str, extra: str
    ) -> list[Notification]:
        subscription = self.subscriptions.get(owner)
        url = subscription.callbacks.get(callback) if subscription else None
        if not url:
            return []
        item = {"id": object_id}
        # notificationInboxCallback: threadId for new messages, the evidence type for evidences.
        item["type" if notification_type == "NewEvidence" else "threadId"] = extra
        body = {
            "eDeliveryAddress": owner,
            "notificationType": notification_type,
            "notification": [item],
        }
        return [Notification(url, body)]

    def _message(self, owner: str, message_id: str) -> StoredMessage:
        message = self.messages.get(message_id)
        if message is None or message.owner != owner:
            raise Refusal("message_not_found", f"no message {message_id} in {owner}")
        return message

    def _copies_of(self, original_id: str) -> list[StoredMessage]:
        return [message for message in self.messages.values() if message.original_id == original_id]


def evidence_document(
    kind: str, evidence_id: str, message: StoredMessage, recipient: str, moment: datetime
) -> bytes:
    """A small unsigned XML evidence (dowód) naming the message, both parties and the event time."""
    digest = hashlib.sha3_256(b"".join(item.content for item in message.attachments)).hexdigest()
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<dowod xmlns="{EVIDENCE_NAMESPACE}" typ={quoteattr(kind)}>'
        f"<identyfikatorDowodu>{escape(evidence_id)}</identyfikatorDowodu>"
        f"<identyfikatorWiadomosci>{escape(message.message_id)}</identyfikatorWiadomosci>"
        f"<nadawca>{escape(message.sender)}</nadawca>"
        f"<adresat>{escape(recipient)}</adresat>"
        f"<czasZdarzenia>{rfc3339(moment)}</czasZdarzenia>"
        f'<skrotTresci algorytm="SHA3-256">{digest}</skrotTresci>'
        f"</dowod>\n"
    ).encode()


def rfc3339(moment: datetime) -> str:
    """``2017-07-21T17:32:28.123456Z``, the contract's date-time form."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _require_ade(address: str) -> str:
    if not ADE.match(address):
        raise Refusal("invalid_address", f"{address!r} is not an e-Doręczenia address")
    return address


def _recipients(metadata: Mapping[str, Any]) -> list[str]:
    addressees = metadata.get("to") or []
    if not addressees:
        raise Refusal("no_recipient", "messageMetadata.to names no addressee")
    return [_require_ade(str(item.get("eDeliveryAddress", ""))) for item in addressees]


def _attachments(items: Sequence[Mapping[str, Any]]) -> list[StoredAttachment]:
    attachments = []
    for order, item in enumerate(items, start=1):
        file_data = item.get("file") or {}
        metadata = file_data.get("fileMetadata") or {}
        content = _decoded(file_data.get("file"))
        expected = metadata.get("hash")
        if expected and expected != hashlib.sha3_256(content).hexdigest():
            raise Refusal("hash_mismatch", f"attachment {order} does not match its SHA-3 hash")
        attachments.append(
            StoredAttachment(
                attachment_id=str(uuid.uuid4()),
                order=int(item.get("order", order)),
                file_id=str(metadata.get("fileId")),
                filename=str(metadata.get("filename", f"zalacznik-{order}")),
                content_type=str(metadata.get("contentType", "application/octet-stream")),
                content=content,
            )
        )
    return attachments


def _decoded(encoded: Any) -> bytes:
    if not isinstance(encoded, str) or not encoded:
        raise Refusal("no_content", "an attachment carries no file content")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise Refusal("bad_content", "attachment content is not base64") from exc


def _apply_label_patch(message: StoredMessage, operation: Mapping[str, Any]) -> None:
    op, path = operation.get("op"), str(operation.get("path", ""))
    if op == "add" and path == "/labels/-":
        label = str((operation.get("value") or {}).get("label", ""))
        if not label:
            raise Refusal("bad_patch", "the label to add is empty")
        if label not in message.labels:
            message.labels.append(label)
        return
    index = path.removeprefix("/labels/")
    if op == "remove" and index.isdigit() and int(index) < len(message.labels):
        del message.labels[int(index)]
        return
    raise Refusal("unsupported_patch", f"{op} {path} is not supported on message control data")
