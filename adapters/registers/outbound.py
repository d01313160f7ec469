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
        self._connection: BlockingConnection | None = None
        self._publisher: ConfirmingPublisher | None = None

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
        """Close the connection to the broker."""
        close_quietly(self._connection)
        self._connection = self._publisher = None

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
        try:
            self._open_publisher().publish("", self._queues.documents, properties, body)
        except BrokerUnavailable:
            self.stop()
            raise

    def _open_publisher(self) -> ConfirmingPublisher:
        if self._publisher is None:
            url = self._endpoint.url
            self._connection = connect(url)
            with translate_broker_errors(url):
                declare_register_queues(self._connection.channel(), self._queues)
            self._publisher = ConfirmingPublisher(self._connection, url)
        return self._publisher


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
