"""Filing registers' answers as receipts of the documents the hub delivered to them.

A register answers on its interface's ``.out`` queue (``legacy.<system>.<office>.out``
by default, ``legacy.<system>.out`` for a system's shared interface; see ``README.md``):
an acknowledgement with its register number, a refusal with a reason, or a status
change of the case. Each answer is kept as a receipt of the
delivered message (``register-ack``, ``register-refusal``, ``register-status``), with the
answer itself as the receipt's document and the answer's ``message_id`` as its id, so
an answer read twice is kept once. A case event records it beside the case.

The ``registers-answers`` inbound kind is polled like a national inbox (``hub poll``):
each round drains every distinct ``.out`` queue of the channel's systems' interfaces
once, with ``basic_get``, and acks an answer only once the store committed it. An answer
the hub cannot file is moved to ``<queue>.parked`` with the reason in the
``hub-park-reason`` header, so an operator sees it; it is never dropped. It cannot be
filed when it is malformed, names a document the hub never sent, or names a document
the hub sent through another interface: a register answers only for what reached it,
and on a shared interface one office's answers must not land on another's documents.

Why a poller and not ``accept``: answers are evidence about documents already in the
store, not new documents to route, so they go straight to the receipts (as
``adapters/epuap/receipts.py`` files UPDs) and the ``accept`` callable stays unused.

Region example::

    [[inbound]]
    name = "registers-answers"
    kind = "registers-answers"
    url = "amqp://hub:secret@rabbit.example.gov.pl:5672/legacy"   # the broker to read from
    systems = ["zezwolenia-alkoholowe", "zajecie-pasa-drogowego", "rejestr-zabytkow"]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from sqlalchemy import select

from adapters.registers.interface import (
    Answer,
    MalformedAnswer,
    RegisterInterface,
    RegisterQueues,
    parse_answer,
    register_interfaces,
)
from adapters.registers.outbound import declare_register_queues
from hub.adapters import Accept
from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.broker.publisher import ConfirmingPublisher, PublishRefused
from hub.errors import (
    BrokerUnavailable,
    ConfigurationError,
    InboundUnavailable,
    StoreUnavailable,
)
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.region import InboundConfig, Region
from hub.settings import Settings
from hub.store.repository import Store
from hub.store.tables import DELIVERIES

log = get_logger(__name__)

OUTBOUND_KIND = "registers-amqp"
PARK_REASON_HEADER = "hub-park-reason"
# Answers taken from one queue per round, so one chatty register cannot starve the rest.
MAX_ANSWERS_PER_QUEUE = 200


@dataclass(frozen=True, slots=True)
class AnswersQueue:
    """One distinct answers queue and the endpoints whose documents may be answered there."""

    answers: str
    endpoints: frozenset[str]

    @property
    def parked(self) -> str:
        """Where the answers the hub cannot file from this queue wait for an operator."""
        return RegisterQueues(documents="", answers=self.answers).parked


def channel_interfaces(channel: InboundConfig, region: Region) -> list[RegisterInterface]:
    """The interfaces of every ``registers-amqp`` endpoint of the channel's systems.

    The channel option ``systems`` (a list) narrows them; without it, every register (a
    region with none has nothing to read).

    Raises:
        ConfigurationError: the channel names systems that have no endpoint at all.
    """
    systems = channel.options.get("systems")
    interfaces = register_interfaces(
        endpoint
        for endpoint in region.endpoints.values()
        if endpoint.kind == OUTBOUND_KIND and (systems is None or endpoint.system in systems)
    )
    if not interfaces and systems is not None:
        raise ConfigurationError(
            f"inbound channel {channel.name}: no {OUTBOUND_KIND} endpoint of systems {systems}"
        )
    return interfaces


def answer_queues(interfaces: Iterable[RegisterInterface]) -> list[AnswersQueue]:
    """Each distinct answers queue once, with every endpoint answering on it.

    A shared interface is one queue for hundreds of endpoints, and templates may also
    share an answers queue between interfaces: each is drained once per round.
    """
    endpoints: dict[str, set[str]] = {}
    for interface in interfaces:
        endpoints.setdefault(interface.queues.answers, set()).update(interface.endpoints)
    return [AnswersQueue(name, frozenset(members)) for name, members in endpoints.items()]


class RegistersAnswersInbound:
    """The ``registers-answers`` inbound kind: registers' answers filed as receipts."""

    def __init__(self, channel: InboundConfig, region: Region, settings: Settings) -> None:
        self._channel_config = channel
        self._settings = settings
        self._interfaces = channel_interfaces(channel, region)
        self._queues = answer_queues(self._interfaces)
        self._store: Store | None = None
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._publisher: ConfirmingPublisher | None = None

    def setup(self) -> None:
        """Open the store; the broker is reached on the first poll."""
        self._store = Store.from_url(self._settings.database_url)

    def stop(self) -> None:
        """Close the broker connection and the store."""
        self._disconnect()
        if self._store is not None:
            self._store.close()

    def poll_once(self, accept: Accept) -> int:
        """Drain every answer queue once; return how many answers were taken.

        ``accept`` is not used: answers are receipts of stored documents, not documents.

        Raises:
            InboundUnavailable: the broker or the store is unavailable; the answer in
                hand was not acked and goes back to its queue with the connection.
        """
        try:
            with translate_broker_errors(self._channel_config.url):
                return sum(self._drain(queues) for queues in self._queues)
        except (BrokerUnavailable, PublishRefused, StoreUnavailable) as exc:
            self._disconnect()
            raise InboundUnavailable(f"{self._channel_config.name}: {exc.reason}") from exc

    def _drain(self, queues: AnswersQueue) -> int:
        channel = self._open_channel()
        taken = 0
        while taken < MAX_ANSWERS_PER_QUEUE:
            method, properties, body = channel.basic_get(queues.answers)
            if method is None:
                break
            self._take(queues, properties, body)
            # Acked only now: the receipt is committed, or the answer parked with a confirm.
            channel.basic_ack(method.delivery_tag)
            taken += 1
        return taken

    def _take(self, queues: AnswersQueue, properties: pika.BasicProperties, body: bytes) -> None:
        assert self._store is not None, "setup() was not called"
        try:
            answer = parse_answer(properties, body)
        except MalformedAnswer as exc:
            self._park(queues, properties, body, str(exc))
            return
        reason = why_not_answerable_here(
            answer.envelope_id, delivery_endpoints(self._store, answer.envelope_id), queues
        )
        if reason is not None:
            self._park(queues, properties, body, reason)
            return
        new = self._store.record_receipt(answer.envelope_id, _evidence(answer, body))
        log.info(
            "register_answer_filed",
            envelope_id=answer.envelope_id,
            kind=answer.receipt_kind,
            answer_id=answer.answer_id,
            duplicate=not new,
        )

    def _park(
        self, queues: AnswersQueue, properties: pika.BasicProperties, body: bytes, reason: str
    ) -> None:
        headers: dict[str, Any] = dict(properties.headers or {})
        headers[PARK_REASON_HEADER] = reason[:1000]
        parked = pika.BasicProperties(
            message_id=properties.message_id,
            correlation_id=properties.correlation_id,
            content_type=properties.content_type,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=headers,
        )
        self._open_publisher().publish("", queues.parked, parked, body)
        log.warning("register_answer_parked", queue=queues.answers, reason=reason)

    def _open_channel(self) -> BlockingChannel:
        if self._channel is None:
            self._connection = connect(self._channel_config.url)
            self._channel = self._connection.channel()
            for interface in self._interfaces:
                declare_register_queues(self._channel, interface.queues)
        return self._channel

    def _open_publisher(self) -> ConfirmingPublisher:
        if self._publisher is None:
            self._open_channel()
            assert self._connection is not None
            self._publisher = ConfirmingPublisher(self._connection, self._channel_config.url)
        return self._publisher

    def _disconnect(self) -> None:
        close_quietly(self._connection)
        self._connection = None
        self._channel = None
        self._publisher = None


def delivery_endpoints(store: Store, message_id: str) -> set[str]:
    """The endpoints the hub addressed the message to (one delivery each), any status.

    Any status, not only ``delivered``: a register may answer (and the poller read it)
    between the broker's confirm of the publish and the worker's commit of the delivery.

    Raises:
        StoreUnavailable: the store could not be read.
    """
    query = select(DELIVERIES.c.endpoint).where(DELIVERIES.c.message_id == message_id)
    with store.reading() as connection:
        return {str(endpoint) for endpoint in connection.scalars(query)}


def why_not_answerable_here(
    envelope_id: str, delivered_to: set[str], queues: AnswersQueue
) -> str | None:
    """Why an answer on ``queues`` about ``envelope_id`` cannot be filed; None: it can.

    Args:
        envelope_id: the document the answer names.
        delivered_to: the endpoints the hub addressed that document to.
        queues: the answers queue the answer came from, with its endpoints.
    """
    if not delivered_to:
        return f"the hub sent no document {envelope_id}"
    if delivered_to & queues.endpoints:
        return None
    return (
        f"document {envelope_id} went to {', '.join(sorted(delivered_to))}, none of which "
        f"answers on {queues.answers}: a register answers only for documents it was sent"
    )


def _evidence(answer: Answer, body: bytes) -> Evidence:
    return Evidence(
        kind=answer.receipt_kind, document=body, external_id=answer.answer_id, detail=answer.detail
    )
