"""Opening connections to RabbitMQ, with pika's errors translated at this one boundary."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection
from pika.adapters.utils.connection_workflow import (
    AMQPConnectorException,
    AMQPConnectorStackTimeout,
)

from hub.errors import BrokerUnavailable

# Every pika error that means "the broker or the link to it is gone".
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    # Raised as is (outside AMQPConnectionError) when a connection attempt times out or
    # is aborted between TCP and login.
    AMQPConnectorException,
    ConnectionError,
    OSError,
)

START_HINT = "start it with: rabbitmq-server -detached"
# A node that has run out of file handles (one per queue, and every endpoint has a
# queue) still takes TCP connections but never finishes the AMQP handshake.
HANDSHAKE_HINT = (
    "the broker took the connection but did not finish the AMQP handshake; a RabbitMQ "
    "node out of file handles does this (it needs one per queue, one per endpoint of "
    "the region): see docs/broker.md"
)


def connect(amqp_url: str, heartbeat_s: int = 30) -> BlockingConnection:
    """Open a blocking connection.

    Raises:
        BrokerUnavailable: with a one-line reason that says how to start the broker.
    """
    parameters = pika.URLParameters(amqp_url)
    parameters.heartbeat = heartbeat_s
    parameters.blocked_connection_timeout = 60
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    with translate_broker_errors(amqp_url):
        return BlockingConnection(parameters)


@contextlib.contextmanager
def translate_broker_errors(amqp_url: str) -> Iterator[None]:
    """Turn pika's connection errors into :class:`BrokerUnavailable`."""
    try:
        yield
    except pika.exceptions.ChannelClosedByBroker as exc:
        # The broker is there but refused an operation (e.g. a queue declared with other
        # arguments): say what it said, since waiting will not fix it by itself.
        raise BrokerUnavailable(
            f"RabbitMQ refused an operation: {exc.reply_code} {exc.reply_text}"
        ) from exc
    except AMQPConnectorStackTimeout as exc:
        where = pika.URLParameters(amqp_url)
        raise BrokerUnavailable(f"RabbitMQ at {where.host}:{where.port}: {HANDSHAKE_HINT}") from exc
    except CONNECTION_ERRORS as exc:
        where = pika.URLParameters(amqp_url)
        detail = str(exc) or "connection refused or closed"
        raise BrokerUnavailable(
            f"RabbitMQ at {where.host}:{where.port} is unreachable ({detail}); {START_HINT}"
        ) from exc


def close_quietly(connection: BlockingConnection | None) -> None:
    """Close a connection that may already be dead."""
    if connection is None or connection.is_closed:
        return
    with contextlib.suppress(*CONNECTION_ERRORS):
        connection.close()
