"""The register simulator: an AMQP peer that takes documents from ``.in`` and answers on ``.out``.

It plays a register the way such systems sit on a message broker: one thread with its
own connection consumes each interface's ``.in`` queue, registers a document once per
``message_id`` (the hub's envelope id), and publishes its answer to ``.out`` with a
publisher confirm before it acks the document, so nothing is lost between the two.

An interface is an office's own (``legacy.alkohol.146501_1.in``) or a system's shared
one (``legacy.alkohol.in``, a regional module serving every office): a shared interface
registers each document for the office its ``hub-office`` header names (the office's
own numbering, ``REJ/146501_1/2026/000001``) and refuses one that names none.

Answers (JSON, ``content_type`` application/json, ``message_id`` unique per answer):

- ``{"kind": "acknowledgement", "envelope_id", "register_number", "occurred_at"}``
- ``{"kind": "refusal", "envelope_id", "reason", "occurred_at"}``
- ``{"kind": "status", "envelope_id", "status", "occurred_at"}``

A document that arrives again (the hub repeated a publish whose confirm it lost) is not
registered again: the register sends its first answer again, with the same message id.

Each interface may name its own broker URL (an office's register with a RabbitMQ user of
its own, ``hub amqp-tenant``): the simulator opens one connection per distinct URL, each
in a thread of its own, since the broker authenticates a connection, not a channel. The
register configures nothing: it passively declares its queues and the answers exchange
(the hub declares them) and publishes each answer to that exchange, never through the
default exchange. Until the hub has declared them it retries, as it does when the
broker is away.

Faults: ``down`` (stops reading; documents wait in ``.in``), ``slow`` (``delay_s``
before each document), and per document ``refuse`` (a refusal answer) or ``crash``
(the document is put back unanswered, as a register that fails mid-way would).
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic

ANSWER_NAMESPACE = uuid.UUID("6f1f4f5e-2b1a-4d7e-9a57-1d3c3c0b8a01")
IDLE_WAIT_S = 0.05
# Each connection's thread wakes this often at most to see controls (down, statuses):
# hundreds of tenants' threads waking every 50 ms would keep a core busy doing nothing.
MAX_IDLE_WAIT_S = 1.0


@dataclass(frozen=True)
class Interface:
    """One interface: documents in, answers out (an exchange of that name).

    ``amqp_url`` is the interface's own broker user, if it has one (None: the
    simulator's). ``office`` is the office of an office's own interface; None for a
    shared one, whose documents each name their office in ``hub-office``.
    """

    documents: str
    answers: str
    prefix: str = "REJ"
    amqp_url: str | None = None
    office: str | None = None


class FaultKind(StrEnum):
    """What the register does to the next documents."""

    REFUSE = "refuse"
    CRASH = "crash"


@dataclass
class Fault:
    """One armed per-document fault for the next ``times`` documents (None: until cleared)."""

    kind: FaultKind
    times: int | None = None
    reason: str = "Wniosek nie spełnia wymogów formalnych"


@dataclass
class RegisterState:
    """Registrations, answers and controls, guarded by one lock (read by the admin API)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    # Each office's register numbers count on their own, on a shared interface too.
    registered_by_office: Counter[str] = field(default_factory=Counter)
    answered_on: dict[str, str] = field(default_factory=dict)
    arrivals: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    down: bool = False
    delay_s: float = 0.0
    answers_sent: int = 0
    unreadable: int = 0
    crashed: int = 0

    def next_fault(self) -> Fault | None:
        """The fault for this document, if any, using up one of its ``times``."""
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.pop(0)
            return fault

    def stats(self) -> dict[str, Any]:
        """Totals for the admin API."""
        with self.lock:
            return {
                "arrivals": sum(self.arrivals.values()),
                "registered": len(self.numbers),
                "registered_by_office": dict(self.registered_by_office),
                "refused": len(self.answers) - len(self.numbers),
                "repeated_keys": sum(count - 1 for count in self.arrivals.values()),
                "answers_sent": self.answers_sent,
                "unreadable": self.unreadable,
                "crashed": self.crashed,
                "down": self.down,
            }

    def received(self) -> dict[str, dict[str, Any]]:
        """Per message id (the hub's key): arrivals and the one record."""
        with self.lock:
            return {
                key: {"count": count, "records": 1, "number": self.numbers.get(key)}
                for key, count in self.arrivals.items()
                if key in self.answers
            }


class RegisterSimulator:
    """The register as a thread; ``start``, control it, ``stop``."""

    def __init__(self, amqp_url: str, interfaces: list[Interface]) -> None:
        self.amqp_url = amqp_url
        self.interfaces = list(interfaces)
        self.state = RegisterState()
        self._stop = threading.Event()
        self._sessions = _sessions(amqp_url, self.interfaces)
        # Statuses go out on the connection of the interface that answered the document.
        self._statuses: dict[str, queue.Queue[tuple[str, str]]] = {
            url: queue.Queue() for url in self._sessions
        }
        self._threads: list[threading.Thread] = []
        self._idle_wait_s = min(MAX_IDLE_WAIT_S, IDLE_WAIT_S * len(self._sessions))

    @property
    def connections(self) -> int:
        """How many connections the register keeps (one per distinct broker user)."""
        return len(self._sessions)

    # ---- control ------------------------------------------------------------------

    def start(self) -> None:
        """Start reading documents, a thread per connection."""
        for number, (url, interfaces) in enumerate(self._sessions.items()):
            thread = threading.Thread(
                target=self._run,
                args=(url, interfaces),
                name=f"register-simulator-{number}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop reading and close the connections."""
        self._stop.set()
        deadline = time.monotonic() + 10
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def set_down(self, down: bool) -> None:
        """Stop (or resume) reading documents; the broker keeps them meanwhile."""
        with self.state.lock:
            self.state.down = down

    def set_delay(self, delay_s: float) -> None:
        """Take ``delay_s`` over each document from now on (0: full speed)."""
        with self.state.lock:
            self.state.delay_s = delay_s

    def arm(self, fault: Fault) -> None:
        """Apply ``fault`` to the next documents."""
        with self.state.lock:
            self.state.faults.append(fault)

    def clear_faults(self) -> None:
        """Back to normal: reading, full speed, no faults."""
        with self.state.lock:
            self.state.faults.clear()
            self.state.down = False
            self.state.delay_s = 0.0

    def report_status(self, envelope_id: str, status: str) -> None:
        """Announce a status change of a registered document's case (sent by the thread)."""
        with self.state.lock:
            answers = self.state.answered_on.get(envelope_id, self.interfaces[0].answers)
        url = next(
            url
            for url, interfaces in self._sessions.items()
            if any(interface.answers == answers for interface in interfaces)
        )
        self._statuses[url].put((envelope_id, status))

    # ---- the register's own thread ------------------------------------------------

    def _run(self, url: str, interfaces: list[Interface]) -> None:
        while not self._stop.is_set():
            connection = _connect(url)
            if connection is None:
                self._stop.wait(0.5)
                continue
            try:
                self._serve(connection, url, interfaces)
            except (pika.exceptions.AMQPError, OSError):
                # The broker went away, or the hub has not declared the interface yet.
                self._stop.wait(0.5)
            finally:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                    connection.close()

    def _serve(self, connection: BlockingConnection, url: str, interfaces: list[Interface]) -> None:
        channel = connection.channel()
        channel.confirm_delivery()
        # One document per queue at a time, as a register takes them; the broker pushes
        # them (a register with hundreds of offices' queues must not poll each of them).
        channel.basic_qos(prefetch_count=1)
        for interface in interfaces:
            # Passive: a register's user may configure nothing; the hub declares these.
            channel.queue_declare(interface.documents, passive=True)
            channel.exchange_declare(interface.answers, passive=True)
        consumers: list[str] = []
        while not self._stop.is_set():
            self._send_statuses(channel, self._statuses[url])
            if self._is_down() and consumers:
                # Documents wait in .in while the register is down; pika returns any it
                # had been handed but not yet dispatched.
                for tag in consumers:
                    channel.basic_cancel(tag)
                consumers.clear()
            elif not self._is_down() and not consumers:
                consumers = [
                    channel.basic_consume(
                        interface.documents, functools.partial(self._on_document, interface)
                    )
                    for interface in interfaces
                ]
            connection.process_data_events(time_limit=self._idle_wait_s)

    def _is_down(self) -> bool:
        with self.state.lock:
            return self.state.down

    def _on_document(
        self,
        interface: Interface,
        channel: BlockingChannel,
        method: Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        if self._is_down():
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        with self.state.lock:
            delay_s = self.state.delay_s
        if delay_s:
            time.sleep(delay_s)
        fault = self.state.next_fault()
        if fault is not None and fault.kind is FaultKind.CRASH:
            with self.state.lock:
                self.state.crashed += 1
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        answer = self._answer(interface, properties, body, fault)
        if answer is not None:
            self._publish(channel, interface.answers, *answer)
        channel.basic_ack(method.delivery_tag)

    def _answer(
        self,
        interface: Interface,
        properties: pika.BasicProperties,
        body: bytes,
        fault: Fault | None,
    ) -> tuple[str, bytes, str] | None:
        key = properties.message_id or _header(properties, "hub-envelope-id")
        if not key:
            with self.state.lock:
                self.state.unreadable += 1
            return None
        with self.state.lock:
            self.state.arrivals[key] += 1
            if key not in self.state.answers:
                self.state.answers[key] = self._first_answer(
                    interface, key, properties, body, fault
                )
                self.state.answered_on[_header(properties, "hub-envelope-id") or key] = (
                    interface.answers
                )
            return self.state.answers[key]

    def _first_answer(
        self,
        interface: Interface,
        key: str,
        properties: pika.BasicProperties,
        body: bytes,
        fault: Fault | None,
    ) -> tuple[str, bytes, str]:
        # Called under the lock: the register decides about a document once.
        envelope_id = _header(properties, "hub-envelope-id") or key
        case = properties.correlation_id or ""
        if fault is not None and fault.kind is FaultKind.REFUSE:
            return _answer_message(key, "refusal", envelope_id, case, reason=fault.reason)
        if not body:
            return _answer_message(key, "refusal", envelope_id, case, reason="Pusty dokument")
        office = _header(properties, "hub-office") or interface.office
        if office is None:
            # A shared register cannot tell whose document it is.
            reason = "Nie wskazano urzędu (hub-office)"
            return _answer_message(key, "refusal", envelope_id, case, reason=reason)
        self.state.registered_by_office[office] += 1
        sequence = self.state.registered_by_office[office]
        number = f"{interface.prefix}/{office}/{datetime.now(UTC).year}/{sequence:06d}"
        self.state.numbers[key] = number
        return _answer_message(key, "acknowledgement", envelope_id, case, register_number=number)

    def _send_statuses(
        self, channel: BlockingChannel, statuses: queue.Queue[tuple[str, str]]
    ) -> None:
        while True:
            try:
                envelope_id, status = statuses.get_nowait()
            except queue.Empty:
                return
            with self.state.lock:
                answers_queue = self.state.answered_on.get(envelope_id, self.interfaces[0].answers)
            answer_id, body, case = _answer_message(
                f"{envelope_id}/{status}", "status", envelope_id, "", status=status
            )
            self._publish(channel, answers_queue, answer_id, body, case)

    def _publish(
        self, channel: BlockingChannel, answers: str, answer_id: str, body: bytes, case: str
    ) -> None:
        # To the answers exchange (named like the queue it is bound to), not through the
        # default exchange: a register's user may write there only.
        channel.basic_publish(
            answers,
            answers,
            body,
            properties=pika.BasicProperties(
                message_id=answer_id,
                correlation_id=case or None,
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
            ),
            mandatory=True,
        )
        with self.state.lock:
            self.state.answers_sent += 1


def _sessions(amqp_url: str, interfaces: list[Interface]) -> dict[str, list[Interface]]:
    """The interfaces by the broker URL (the user) they are read and answered with.

    An interface given twice (a shared one, named once per office it serves) is consumed
    once: two consumers of one queue would only split its documents between them.
    """
    sessions: dict[str, list[Interface]] = {}
    for interface in dict.fromkeys(interfaces):
        sessions.setdefault(interface.amqp_url or amqp_url, []).append(interface)
    return sessions


def _connect(url: str) -> BlockingConnection | None:
    try:
        return pika.BlockingConnection(pika.URLParameters(url))
    except (pika.exceptions.AMQPError, OSError):
        return None


def _answer_message(
    key: str, kind: str, envelope_id: str, case: str, **fields: str
) -> tuple[str, bytes, str]:
    """An answer's id, body and case; the id is derived, so a repeated answer keeps it."""
    answer_id = str(uuid.uuid5(ANSWER_NAMESPACE, f"{key}/{kind}"))
    values = {"kind": kind, "envelope_id": envelope_id, **fields}
    values["occurred_at"] = datetime.now(UTC).isoformat()
    return answer_id, json.dumps(values, ensure_ascii=False).encode(), case


def _header(properties: pika.BasicProperties, name: str) -> str | None:
    value = (properties.headers or {}).get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
