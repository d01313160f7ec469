"""Delivering documents to an office's register over RabbitMQ (the ``registers-amqp`` kind).

The register's interface is a pair of queues: the hub publishes each document to
``legacy.<system>.<office>.in`` (persistent, ``mandatory``, with publisher confirms,
``message_id`` = the envelope id) and the register answers on
``legacy.<system>.<office>.out`` (read by ``adapters/registers/inbound.py``). The
queue names come from the endpoint options ``queue_in`` / ``queue_out`` (templates over
``{system}`` and ``{office}``); templates without ``{office}`` make one interface shared
by every office of the system (``legacy.<system>.in``), the office travelling in each
document's ``hub-office`` header. See ``README.md`` for the headers and the answers.

A delivery counts as delivered once the broker confirms the publish: from then on the
queue holds the document for the register. The register's acknowledgement comes later
on its own, so the delivery awaits a ``register-ack`` receipt and shows as late if none
comes by the hub's receipt deadline.

A publish repeated after a lost confirm carries the same ``message_id``; the register
deduplicates by it, so nothing is registered twice.

Region example::

    [[systems]]
    name = "zezwolenia-alkoholowe"
    kind = "registers-amqp"
    url = "amqp://hub:secret@rabbit.example.gov.pl:5672/legacy"
    [systems.options]
    queue_in = "legacy.{system}.{office}.in"      # the default; "legacy.{system}.in": shared
    queue_out = "legacy.{system}.{office}.out"    # the default; "legacy.{system}.out": shared
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.registers.interface import (
    ACK_KIND,
    ANSWERS_EXCHANGE_TYPE,
    QUEUE_ARGUMENTS,
    RegisterQueues,
    message_properties,
)
from hub.adapters import DeliveryReceipt
from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.broker.publisher import ConfirmingPublisher, PublishRefused
from hub.envelope import Envelope
from hub.errors import BrokerUnavailable, TransientDeliveryError
from hub.region import EndpointConfig
from hub.settings import Settings


def declare_register_queues(channel: BlockingChannel, queues: RegisterQueues) -> None:
    """Declare an endpoint's interface (idempotent while the arguments agree).

    The queues, and the answers exchange bound to the answers queue: the register, whose
    own user may configure nothing, only passively declares them and publishes there.
    """
    for name in (queues.documents, queues.answers, queues.parked):
        channel.queue_declare(name, durable=True, arguments=QUEUE_ARGUMENTS)
    channel.exchange_declare(queues.answers_exchange, ANSWERS_EXCHANGE_TYPE, durable=True)
    channel.queue_bind(queues.answers, queues.answers_exchange)


class RegistersAmqpOutbound:
    """The ``registers-amqp`` outbound kind: one office's register behind two queues.

    The queues may be its system's shared interface, which other endpoints publish to.
    """

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self._endpoint = endpoint
        self._queues = RegisterQueues.of(endpoint)

    @property
    def queues(self) -> RegisterQueues:
        """The endpoint's interface queues."""
        return self._queues

    def setup(self) -> None:
        """Nothing to open yet: the broker is reached on the first delivery.

        Connecting here would turn a broker outage at start-up into a crash of the worker
        instead of a delivery retried later.
        """

    def stop(self) -> None:
        """Nothing of its own to close: the thread's link to the broker is shared."""

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Publish ``envelope`` to the register's queue and wait for the broker's confirm.

        Raises:
            TransientDeliveryError: the broker is unreachable, refused the message (nack,
                a full queue) or no queue took it; nothing is known to be queued.
        """
        properties = message_properties(envelope, self._endpoint, self._queues.answers)
        with _translate_broker_errors(self._endpoint.name, self._queues.documents):
            self._publish_with_retries(properties, envelope.body)
        return DeliveryReceipt(
            endpoint=self._endpoint.name,
            external_reference=self._queues.documents,
            awaits=ACK_KIND,
        )

    @retry(
        retry=retry_if_exception_type(BrokerUnavailable),
        stop=stop_after_attempt(2),
        wait=wait_exponential(multiplier=0.05, max=0.5),
        reraise=True,
    )
    def _publish_with_retries(self, properties: pika.BasicProperties, body: bytes) -> None:
        # A dropped connection (an idle one the broker closed, say) is opened again once
        # in-call; a publish repeated here keeps its message_id, so the register sees one.
        link = _links.for_url(self._endpoint.url)
        try:
            link.publisher_for(self._queues).publish("", self._queues.documents, properties, body)
        except BrokerUnavailable:
            _links.drop(self._endpoint.url)
            raise


class _Link:
    """One connection to a register broker, and the interfaces declared on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: BlockingConnection = connect(url)
        self.publisher = ConfirmingPublisher(self.connection, url)
        self._declared: set[RegisterQueues] = set()

    def publisher_for(self, queues: RegisterQueues) -> ConfirmingPublisher:
        """The publisher, once ``queues`` are declared on this connection."""
        if queues not in self._declared:
            with translate_broker_errors(self.url):
                declare_register_queues(self.connection.channel(), queues)
            self._declared.add(queues)
        return self.publisher


class _ThreadLinks(threading.local):
    """Each handler thread's links, one per broker URL (pika is not thread-safe).

    Every endpoint of a register system publishes through its thread's one link, so a
    worker holds a connection per thread and broker, not one per office.
    """

    def __init__(self) -> None:
        self.by_url: dict[str, _Link] = {}

    def for_url(self, url: str) -> _Link:
        link = self.by_url.get(url)
        if link is None or link.connection.is_closed:
            link = self.by_url[url] = _Link(url)
        return link

    def drop(self, url: str) -> None:
        link = self.by_url.pop(url, None)
        if link is not None:
            close_quietly(link.connection)


_links = _ThreadLinks()


@contextlib.contextmanager
def _translate_broker_errors(endpoint: str, queue: str) -> Iterator[None]:
    try:
        yield
    except BrokerUnavailable as exc:
        raise TransientDeliveryError(f"{endpoint}: {exc.reason}") from exc
    except PublishRefused as exc:
        raise TransientDeliveryError(
            f"{endpoint}: {queue} did not take the document: {exc.reason}"
        ) from exc
