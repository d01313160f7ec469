"""Thread-safe state of the simulator: pending documents per skrytka, counters, armed faults.

The Flask server is threaded, so every structure here guards itself with a lock and hands
out immutable snapshots, never its internal containers.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "FaultKind",
    "FaultSchedule",
    "InjectedFault",
    "MailboxStore",
    "PendingDocument",
    "SimulatorState",
    "SimulatorStats",
    "mailbox_address",
    "parse_mailbox_address",
]

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


@dataclass
class SimulatorState:
    """Everything the simulator remembers between requests."""

    mailboxes: MailboxStore = field(default_factory=MailboxStore)
    stats: SimulatorStats = field(default_factory=SimulatorStats)
    faults: FaultSchedule = field(default_factory=FaultSchedule)

    def reset(self) -> None:
        """Empty the mailboxes, zero the counters and disarm all faults."""
        self.mailboxes.clear()
        self.stats.reset()
        self.faults.clear()
