"""Publishing with publisher confirms and ``mandatory``: a message is either queued or we know."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from hub.broker.connection import translate_broker_errors
from hub.errors import HubError


class PublishRefused(HubError):
    """The broker nacked the message, or no queue would take it (returned as unroutable)."""

    code = "publish-refused"


class ConfirmingPublisher:
    """Publishes on its own channel in confirm mode; each publish returns once confirmed.

    A blocking confirm per message costs a broker round trip, so callers publish a batch
    only after their database commit and ack their input only after the batch confirmed.
    """

    def __init__(self, connection: BlockingConnection, amqp_url: str) -> None:
        self._amqp_url = amqp_url
        with translate_broker_errors(amqp_url):
            self._channel: BlockingChannel = connection.channel()
            self._channel.confirm_delivery()

    def declare(self, declaration: Callable[[BlockingChannel], None]) -> None:
        """Run ``declaration`` (queues, bindings) on this channel before publishing to them.

        Raises:
            BrokerUnavailable: the connection dropped.
        """
        with translate_broker_errors(self._amqp_url):
            declaration(self._channel)

    def publish(
        self, exchange: str, routing_key: str, properties: pika.BasicProperties, body: bytes
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm.

        Raises:
            PublishRefused: nacked, or unroutable (no queue bound for ``routing_key``).
            BrokerUnavailable: the connection dropped; the caller must not ack its input.
        """
        with translate_broker_errors(self._amqp_url):
            try:
                self._channel.basic_publish(
                    exchange, routing_key, body, properties=properties, mandatory=True
                )
            except pika.exceptions.UnroutableError as exc:
                raise PublishRefused(
                    f"no queue takes routing key {routing_key!r} on exchange {exchange!r}"
                ) from exc
            except pika.exceptions.NackError as exc:
                raise PublishRefused(f"broker refused message for {routing_key!r}") from exc
