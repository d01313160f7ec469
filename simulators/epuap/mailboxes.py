"""Thread-safe simulator state: skrytki with pending documents, counters, faults, sent log.

The Flask server is threaded, so every structure here guards itself with a lock and hands
out immutable snapshots, never its internal containers.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "FaultKind",
    "FaultSchedule",
    "InjectedFault",
    "MailboxStore",
    "PendingDocument",
    "SentDocument",
    "SentLog",
    "SimulatorState",
    "SimulatorStats",
    "mailbox_address",
    "parse_mailbox_address",
]

_FINAL_UPD_STATES = frozenset({"delivered", "failed"})

#: ePUAP limits IdentyfikatorPodmiotuTyp to 100 characters (obiektypk.xsd).
MAX_PODMIOT_LENGTH = 100


def mailbox_address(podmiot: str, nazwa_skrytki: str) -> str:
    """Return the skrytka address ePUAP uses: ``/{podmiot}/{nazwaSkrytki}``."""
    return f"/{podmiot}/{nazwa_skrytki}"


def parse_mailbox_address(address: str) -> tuple[str, str]:
    """Split ``/{podmiot}/{nazwaSkrytki}`` into its two parts.

    Args:
        address: a skrytka address such as "/um-radom/skrytka".

    Returns:
        (podmiot, nazwaSkrytki).

    Raises:
        ValueError: the address does not have exactly that shape.
    """
    parts = address.split("/")
    if len(parts) != 3 or parts[0] != "" or not parts[1] or not parts[2]:
        raise ValueError(f"mailbox address must look like /podmiot/skrytka, got {address!r}")
    if len(parts[1]) > MAX_PODMIOT_LENGTH:
        raise ValueError(f"podmiot longer than {MAX_PODMIOT_LENGTH} characters: {address!r}")
    return parts[1], parts[2]


@dataclass(frozen=True)
class PendingDocument:
    """A document waiting in a skrytka, with the envelope data pobierzNastepny reports."""

    address: str
    content: bytes
    sha1_b64: str
    enqueued_at: datetime
    filename: str
    content_type: str
    title: str
    sender_login: str
    sender_first_name: str
    sender_last_name: str
    sender_pesel: str
    extra_data: bytes = b""
    # "F" for a citizen (osoba fizyczna), "P" for an office or company (osoba prawna).
    sender_type: str = "F"
    # Where answers go; empty means the sender's default skrytka "/{login}/skrytka".
    reply_address: str = ""


class MailboxStore:
    """FIFO queues of pending documents, one per skrytka address."""

    def __init__(self) -> None:
        """Create an empty store."""
        self._lock = threading.Lock()
        self._queues: dict[str, deque[PendingDocument]] = {}

    def enqueue(self, documents: Iterable[PendingDocument]) -> int:
        """Append documents to the tail of their skrytki; return how many were added."""
        added = 0
        with self._lock:
            for document in documents:
                self._queues.setdefault(document.address, deque()).append(document)
                added += 1
        return added

    def count(self, address: str) -> int:
        """Return the number of pending documents in one skrytka (0 if never seen)."""
        with self._lock:
            queue = self._queues.get(address)
            return len(queue) if queue else 0

    def head(self, address: str) -> PendingDocument | None:
        """Return the oldest pending document of a skrytka without removing it."""
        with self._lock:
            queue = self._queues.get(address)
            return queue[0] if queue else None

    def confirm(self, address: str, sha1_b64: str) -> PendingDocument | None:
        """Remove the first pending document of a skrytka whose digest is ``sha1_b64``.

        Args:
            address: the skrytka.
            sha1_b64: base64 SHA-1 of the document bytes (the protocol's ``skrot``).

        Returns:
            The removed document, or None when no pending document matches.
        """
        with self._lock:
            queue = self._queues.get(address)
            if not queue:
                return None
            for position, document in enumerate(queue):
                if document.sha1_b64 == sha1_b64:
                    del queue[position]
                    return document
            return None

    def pending_by_mailbox(self) -> dict[str, int]:
        """Return the pending count of every non-empty skrytka."""
        with self._lock:
            return {address: len(queue) for address, queue in self._queues.items() if queue}

    def clear(self) -> None:
        """Forget every pending document."""
        with self._lock:
            self._queues.clear()


class SimulatorStats:
    """Counters for GET /_sim/stats."""

    def __init__(self) -> None:
        """Start with every counter at zero."""
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._served = 0
        self._confirmed = 0
        self._confirm_unknown = 0

    def count_request(self, operation: str) -> None:
        """Count one SOAP request for ``operation`` (injected failures included)."""
        with self._lock:
            self._requests[operation] += 1

    def count_served(self) -> None:
        """Count one pobierzNastepny answer that carried a document."""
        with self._lock:
            self._served += 1

    def count_confirmation(self, *, known: bool) -> None:
        """Count one potwierdzOdebranie, split by whether the skrot matched a document."""
        with self._lock:
            if known:
                self._confirmed += 1
            else:
                self._confirm_unknown += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as plain JSON-ready values."""
        with self._lock:
            return {
                "served": self._served,
                "confirmed": self._confirmed,
                "confirm_unknown": self._confirm_unknown,
                "requests": dict(self._requests),
            }

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._requests.clear()
            self._served = self._confirmed = self._confirm_unknown = 0


class FaultKind(StrEnum):
    """Ways an armed fault makes an operation misbehave."""

    HTTP500 = "http500"  # plain-text HTTP 500, not SOAP at all
    SOAP_FAULT = "soap_fault"  # soap:Server Fault with an ob:Wyjatek detail
    DELAY = "delay"  # sleep, then answer normally
    DROP_CONFIRM = "drop_confirm"  # potwierdzOdebranie only: keep the document, answer 500
    BAD_SIGNATURE = "bad_signature"  # answer normally, then alter the Body after signing it


@dataclass(frozen=True)
class InjectedFault:
    """One failure to apply to the current call."""

    kind: FaultKind
    delay_s: float = 0.0


@dataclass
class _Armed:
    """A fault still armed for ``remaining`` more calls."""

    fault: InjectedFault
    remaining: int


class FaultSchedule:
    """Per-operation FIFO of armed faults; each call consumes one shot of the oldest."""

    def __init__(self) -> None:
        """Start with nothing armed."""
        self._lock = threading.Lock()
        self._armed: dict[str, deque[_Armed]] = {}

    def arm(self, operation: str, fault: InjectedFault, times: int) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``fault``.

        Faults armed earlier for the same operation fire first.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._armed.setdefault(operation, deque()).append(_Armed(fault, times))

    def take(self, operation: str) -> InjectedFault | None:
        """Consume and return the fault for this call of ``operation``, if one is armed."""
        with self._lock:
            queue = self._armed.get(operation)
            if not queue:
                return None
            armed = queue[0]
            armed.remaining -= 1
            if armed.remaining == 0:
                queue.popleft()
            return armed.fault

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Return what is still armed, per operation, in firing order."""
        with self._lock:
            return {
                operation: [
                    {"kind": str(a.fault.kind), "times": a.remaining, "delay_s": a.fault.delay_s}
                    for a in queue
                ]
                for operation, queue in self._armed.items()
                if queue
            }

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._armed.clear()


@dataclass(frozen=True)
class SentDocument:
    """What arrived through nadaj or dorecz, as GET /_sim/sent reports it.

    ``receipt_id`` is the UPP id for nadaj and the identyfikatorZlecenia for dorecz;
    ``signer`` is the WS-Security signer of the request, ``document_signer`` the XAdES
    signer of the document itself (dorecz only); ``upd`` is None for nadaj, else one of
    "scheduled", "held", "delivered", "failed", "none" (czyProbne: nobody picks it up).
    """

    operation: str
    document_id: str
    receipt_id: str
    address: str
    reply_address: str
    podmiot: str
    filename: str
    sha256_b64: str
    signer: str | None
    document_signer: str | None
    trial: bool
    received_at: datetime
    upd: str | None = None
    upd_delivered_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the record as JSON-ready values (datetimes in ISO 8601)."""
        values = asdict(self)
        for name in ("received_at", "upd_delivered_at"):
            moment = values[name]
            values[name] = moment.isoformat() if moment is not None else None
        return values


class SentLog:
    """Everything sent through nadaj and dorecz, in arrival order, plus the id sequence."""

    def __init__(self) -> None:
        """Start empty; ids start at the current Unix time in milliseconds.

        Seeding ids from the clock keeps them numeric, like ePUAP's, and unique across
        simulator restarts, so a hub that deduplicates by document id never sees a repeat.
        """
        self._lock = threading.Lock()
        self._ids = itertools.count(time.time_ns() // 1_000_000)
        self._documents: dict[str, SentDocument] = {}

    def next_id(self) -> str:
        """Return a fresh identifier (identyfikatorDokumentu, UPP, zlecenie, UPD)."""
        with self._lock:
            return str(next(self._ids))

    def record(self, document: SentDocument) -> None:
        """Remember one sent document under its document_id."""
        with self._lock:
            self._documents[document.document_id] = document

    def mark_upd(self, document_id: str, upd: str, delivered_at: datetime | None = None) -> None:
        """Set the UPD state of a dorecz document.

        A final state ("delivered", "failed") is kept: the courier may finish before the
        request thread records that it scheduled the UPD. Unknown ids (the log was
        reset meanwhile) are ignored.
        """
        with self._lock:
            document = self._documents.get(document_id)
            if document is not None and document.upd not in _FINAL_UPD_STATES:
                self._documents[document_id] = replace(
                    document, upd=upd, upd_delivered_at=delivered_at
                )

    def snapshot(self) -> list[dict[str, Any]]:
        """Return every record as JSON-ready values, oldest first."""
        with self._lock:
            return [document.as_json() for document in self._documents.values()]

    def clear(self) -> None:
        """Forget every record (ids keep counting, so none is ever reused)."""
        with self._lock:
            self._documents.clear()


@dataclass
class SimulatorState:
    """Everything the simulator remembers between requests."""

    mailboxes: MailboxStore = field(default_factory=MailboxStore)
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    faults: FaultSchedule = field(default_factory=FaultSchedule)
    sent: SentLog = field(default_factory=SentLog)

    def reset(self) -> None:
        """Empty the mailboxes and the sent log, zero the counters and disarm all faults."""
        self.mailboxes.clear()
        self.stats.reset()
        self.faults.clear()
        self.sent.clear()
