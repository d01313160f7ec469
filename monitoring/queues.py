"""Queue depths read from RabbitMQ with passive declares (the management plugin is off)."""

from __future__ import annotations

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
    messages: int | None
    consumers: int | None


def queue_depths(amqp_url: str, topology: Topology) -> list[QueueDepth]:
    """Depth and consumers of every queue of the topology (a constant set, shared by all
    endpoints: an endpoint's own backlog is counted in the store, not here).

    Raises:
        BrokerUnavailable: RabbitMQ cannot be reached.
    """
    wanted: list[tuple[str, str]] = [(queue, "accepted") for queue in topology.accepted_queues]
    wanted += [(queue, "delivery") for queue in topology.delivery_queues]
    wanted += [(topology.delay_queue(delay), "delay") for delay in topology.delays_s]
    wanted.append((topology.dead_letter_queue, "dead"))
    connection = connect(amqp_url)
    try:
        with translate_broker_errors(amqp_url):
            return [_depth(connection, *item) for item in wanted]
    finally:
        close_quietly(connection)


def _depth(connection: BlockingConnection, queue: str, kind: str) -> QueueDepth:
    # A passive declare of a missing queue closes its channel, so each queue gets its own.
    channel = connection.channel()
    try:
        declared = channel.queue_declare(queue, passive=True).method
    except pika.exceptions.ChannelClosedByBroker:
        return QueueDepth(queue, kind, None, None)
    channel.close()
    return QueueDepth(queue, kind, declared.message_count, declared.consumer_count)
