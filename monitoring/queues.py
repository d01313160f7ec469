"""Queue depths read from RabbitMQ with passive declares (the management plugin is off)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection

from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.broker.topology import Topology


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages wait in one queue; ``None`` when the queue is not declared (yet)."""

    queue: str
    kind: str
    endpoint: str | None
    messages: int | None
    consumers: int | None


def queue_depths(
    amqp_url: str, prefix: str, endpoints: Iterable[str], delays_s: Iterable[int]
) -> list[QueueDepth]:
    """Depth and consumers of the accepted, delivery, delay and dead-letter queues.

    Raises:
        BrokerUnavailable: RabbitMQ cannot be reached.
    """
    topology = Topology(prefix)
    wanted: list[tuple[str, str, str | None]] = [(topology.accepted_queue, "accepted", None)]
    wanted += [(topology.delivery_queue(name), "delivery", name) for name in sorted(endpoints)]
    wanted += [(topology.delay_queue(delay), "delay", None) for delay in delays_s]
    wanted.append((topology.dead_letter_queue, "dead", None))
    connection = connect(amqp_url)
    try:
        with translate_broker_errors(amqp_url):
            return [_depth(connection, *item) for item in wanted]
    finally:
        close_quietly(connection)


def _depth(
    connection: BlockingConnection, queue: str, kind: str, endpoint: str | None
) -> QueueDepth:
    # A passive declare of a missing queue closes its channel, so each queue gets its own.
    channel = connection.channel()
    try:
        declared = channel.queue_declare(queue, passive=True).method
    except pika.exceptions.ChannelClosedByBroker:
        return QueueDepth(queue, kind, endpoint, None, None)
    channel.close()
    return QueueDepth(queue, kind, endpoint, declared.message_count, declared.consumer_count)
