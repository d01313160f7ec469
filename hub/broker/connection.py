"""Opening connections to RabbitMQ, with pika's errors translated at this one boundary.

The broker may be one node or a cluster: ``amqp_url`` names one URL, or several
separated by commas (the nodes of a RabbitMQ cluster). :func:`connect` tries them in
turn, each process starting at a random node and every later call at the next one, so
a region's processes spread over the nodes and a connection that dropped (its node
gone) comes back on another.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Iterator

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingConnection
from pika.adapters.utils.connection_workflow import (
    AMQPConnectorException,
    AMQPConnectorStackTimeout,
)

from hub.errors import BrokerUnavailable, ConfigurationError

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


# Where this process's next connection starts in the list of nodes. A random start spreads
# processes over a cluster's nodes; counting on from it makes each reconnection begin at
# the node after the last one, not at the node that may just have died. (next() on a
# count is atomic under the GIL, so the threads of a worker share it safely.)
_next_start = itertools.count(random.randrange(1 << 16))


def broker_urls(amqp_url: str) -> list[str]:
    """The broker URLs ``amqp_url`` names: one, or a cluster's nodes separated by commas.

    A comma inside a URL is percent-encoded (``%2C``), so splitting on commas is safe.
    """
    return [url.strip() for url in amqp_url.split(",") if url.strip()]


def broker_addresses(amqp_url: str) -> str:
    """``host:port`` of every broker ``amqp_url`` names, for messages (no credentials)."""
    addresses = []
    for url in broker_urls(amqp_url):
        where = pika.URLParameters(url)
        addresses.append(f"{where.host}:{where.port}")
    return ", ".join(addresses)


def connect(amqp_url: str, heartbeat_s: int = 30) -> BlockingConnection:
    """Open a blocking connection to the first node of ``amqp_url`` that answers.

    Args:
        amqp_url: one amqp URL, or several separated by commas (a cluster's nodes); they
            are tried in turn, starting at a different one on each call.
        heartbeat_s: the AMQP heartbeat the connection asks for.

    Raises:
        BrokerUnavailable: no node answered; the reason names them and how to start one.
        ConfigurationError: ``amqp_url`` names no URL at all.
    """
    urls = broker_urls(amqp_url)
    if not urls:
        raise ConfigurationError("no RabbitMQ address given (an amqp:// URL, or several)")
    start = next(_next_start) % len(urls)
    # pika tries a sequence of parameters in order, each once, and raises the last error.
    candidates = [_parameters(url, heartbeat_s) for url in urls[start:] + urls[:start]]
    with translate_broker_errors(amqp_url):
        return BlockingConnection(candidates)


def _parameters(url: str, heartbeat_s: int) -> pika.URLParameters:
    parameters = pika.URLParameters(url)
    parameters.heartbeat = heartbeat_s
    parameters.blocked_connection_timeout = 60
    parameters.connection_attempts = 1
    parameters.socket_timeout = 5
    return parameters


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
        raise BrokerUnavailable(
            f"RabbitMQ at {broker_addresses(amqp_url)}: {HANDSHAKE_HINT}"
        ) from exc
    except CONNECTION_ERRORS as exc:
        detail = str(exc) or "connection refused or closed"
        raise BrokerUnavailable(
            f"RabbitMQ at {broker_addresses(amqp_url)} is unreachable ({detail}); {START_HINT}"
        ) from exc


def close_quietly(connection: BlockingConnection | None) -> None:
    """Close a connection that may already be dead."""
    if connection is None or connection.is_closed:
        return
    with contextlib.suppress(*CONNECTION_ERRORS):
        connection.close()
