"""Consuming with manual acks: a message is acked only after its handler's work committed.

The loop survives the broker going away: it reconnects with backoff and lets the
broker redeliver whatever was unacked, which the handlers deduplicate by message id.
It survives the database going away the same way: it leaves the broker and comes back
once the store answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from hub.broker.connection import CONNECTION_ERRORS, close_quietly, connect, translate_broker_errors
from hub.broker.publisher import ConfirmingPublisher
from hub.errors import BrokerUnavailable, StoreUnavailable
from hub.logging import get_logger

log = get_logger(__name__)

STORE_PROBE_INTERVAL_S = 1.0  # how often a paused consumer asks whether the store is back


class _StorePause(Exception):
    """The store went away under a handler: leave the broker until it answers again."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message as a handler sees it."""

    queue: str
    properties: pika.BasicProperties
    body: bytes
    redelivered: bool

    @property
    def message_id(self) -> str:
        """The id the sender deduplicates by."""
        return self.properties.message_id or ""


Handler = Callable[[IncomingMessage, ConfirmingPublisher], None]
OnConnect = Callable[[BlockingChannel], None]
QueueSource = Callable[[], Sequence[str]]
Prefetch = int | Callable[[str], int]


class ConsumerLoop:
    """Consume ``queues`` with bounded prefetch and hand each message to ``handler``.

    The handler commits its database work and publishes its follow-ups (with confirms)
    before it returns; only then is the message acked. If it raises, the message is
    returned to its queue; the queue's delivery limit parks a message that always fails.
    """

    def __init__(
        self,
        amqp_url: str,
        queues: Sequence[str],
        handler: Handler,
        *,
        store_ready: Callable[[], bool],
        prefetch: Prefetch = 50,
        on_connect: OnConnect | None = None,
        backoff_max_s: float = 30.0,
        more_queues: QueueSource | None = None,
    ) -> None:
        """Args (beyond the obvious):
        prefetch: unacked messages per consumer, or a function of the queue's name
            (quorum queues bound them per consumer only, not per channel).
        on_connect: declares the topology on every fresh channel.
        more_queues: asked between messages for the queues to consume now; a queue
            not consumed yet (a new endpoint of a reloaded region) is declared (with
            ``on_connect``) and consumed from then on.
        store_ready: whether the database answers. A handler that finds the store gone
            makes the loop leave the broker (its unacked messages go back once) and
            wait until the store answers, instead of handing the same message back
            over and over: each return counts toward the queue's delivery limit, and an
            outage longer than a few seconds would dead-letter healthy messages.
        """
        self._amqp_url = amqp_url
        self._queues = list(queues)
        self._more_queues = more_queues
        self._handler = handler
        self._store_ready = store_ready
        self._prefetch_of = prefetch if callable(prefetch) else (lambda _queue: prefetch)
        self._on_connect = on_connect
        self._backoff_max_s = backoff_max_s
        self._qos = 0  # the prefetch the channel's next consumer gets
        self.stop_requested = threading.Event()

    def run(self) -> None:
        """Consume until :attr:`stop_requested` is set, reconnecting whenever the link drops."""
        backoff_s = 0.5
        while not self.stop_requested.is_set():
            try:
                self._consume_once()
                backoff_s = 0.5
            except BrokerUnavailable as exc:
                log.warning("broker_unavailable", reason=exc.reason, retry_in_s=backoff_s)
                self.stop_requested.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)
            except _StorePause:
                self._wait_for_store()

    def _wait_for_store(self) -> None:
        log.warning("consumer_paused_for_store")
        while not self.stop_requested.is_set() and not self._store_ready():
            self.stop_requested.wait(STORE_PROBE_INTERVAL_S)
        log.info("consumer_resumed")

    def _consume_once(self) -> None:
        connection = connect(self._amqp_url)
        try:
            with translate_broker_errors(self._amqp_url):
                channel = connection.channel()
                if self._on_connect:
                    self._on_connect(channel)
                publisher = ConfirmingPublisher(connection, self._amqp_url)
                self._qos = 0
                for queue in self._queues:
                    self._consume(channel, publisher, queue)
                log.info("consumer_started", queues=len(self._queues))
                while not self.stop_requested.is_set():
                    connection.process_data_events(time_limit=0.5)
                    self._consume_new_queues(channel, publisher)
        finally:
            close_quietly(connection)

    def _consume_new_queues(self, channel: BlockingChannel, publisher: ConfirmingPublisher) -> None:
        if self._more_queues is None:
            return
        new = [queue for queue in self._more_queues() if queue not in self._queues]
        if not new:
            return
        if self._on_connect:
            self._on_connect(channel)
        for queue in new:
            self._consume(channel, publisher, queue)
            self._queues.append(queue)
        log.info("consumer_queues_added", queues=new)

    def _consume(
        self, channel: BlockingChannel, publisher: ConfirmingPublisher, queue: str
    ) -> None:
        # basic.qos applies to the consumers started after it on the channel.
        prefetch = self._prefetch_of(queue)
        if prefetch != self._qos:
            channel.basic_qos(prefetch_count=prefetch)
            self._qos = prefetch
        channel.basic_consume(queue, self._callback_for(queue, channel, publisher))

    def _callback_for(
        self, queue: str, channel: BlockingChannel, publisher: ConfirmingPublisher
    ) -> Callable[[BlockingChannel, Basic.Deliver, pika.BasicProperties, bytes], None]:
        def on_message(
            _channel: BlockingChannel,
            method: Basic.Deliver,
            properties: pika.BasicProperties,
            body: bytes,
        ) -> None:
            message = IncomingMessage(queue, properties, body, bool(method.redelivered))
            self._dispatch(message, publisher, channel, method.delivery_tag)

        return on_message

    def _dispatch(
        self,
        message: IncomingMessage,
        publisher: ConfirmingPublisher,
        channel: BlockingChannel,
        delivery_tag: int,
    ) -> None:
        try:
            self._handler(message, publisher)
        except BrokerUnavailable:
            raise  # the link is gone; the unacked message comes back after reconnecting
        except StoreUnavailable as exc:
            log.warning("store_unavailable", reason=exc.reason, message_id=message.message_id)
            raise _StorePause from exc  # closing the connection returns the message
        except CONNECTION_ERRORS:
            raise
        except Exception:
            # A bug or an unforeseen input: never crash the worker. The queue's delivery
            # limit dead-letters a message that keeps failing.
            log.exception("handler_failed", message_id=message.message_id, queue=message.queue)
            channel.basic_nack(delivery_tag, requeue=True)
            return
        channel.basic_ack(delivery_tag)
