"""Consuming with manual acks: a message is acked only after its handler's work committed.

The loop survives the broker going away: it reconnects with backoff and lets the
broker redeliver whatever was unacked, which the handlers deduplicate by message id.
It survives the database going away the same way: it leaves the broker and comes back
once the store answers.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
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
    routing_key: str = ""  # as published; a message back from a delay tier keeps its own

    @property
    def message_id(self) -> str:
        """The id the sender deduplicates by."""
        return self.properties.message_id or ""


Handler = Callable[[IncomingMessage, "Publisher"], None]
OnConnect = Callable[[BlockingChannel], None]
Prefetch = int | Callable[[str], int]


class Publisher(Protocol):
    """What a handler publishes its follow-ups through (confirmed before it returns)."""

    def publish(
        self, exchange: str, routing_key: str, properties: pika.BasicProperties, body: bytes
    ) -> None:
        """Publish one message and wait for the broker's confirm."""

    def declare(self, declaration: Callable[[BlockingChannel], None]) -> None:
        """Run a declaration on the publishing channel."""


class ConsumerLoop:
    """Consume ``queues`` with bounded prefetch and hand each message to ``handler``.

    The handler commits its database work and publishes its follow-ups (with confirms)
    before it returns; only then is the message acked. If it raises, the message is
    returned to its queue; the queue's delivery limit parks a message that always fails.

    With ``concurrency`` above 1 the loop's thread only talks to the broker and a pool of
    that many threads runs the handlers: a handler waiting on a slow destination then holds
    one pool thread, not the messages the broker already handed to this consumer. The
    handlers publish through the loop's own channel and their acks go back to the loop's
    thread (pika is not thread-safe; ``add_callback_threadsafe`` is its one door).
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
        concurrency: int = 1,
    ) -> None:
        """Args (beyond the obvious):
        prefetch: unacked messages per consumer, or a function of the queue's name
            (quorum queues bound them per consumer only, not per channel).
        on_connect: declares the topology on every fresh channel.
        store_ready: whether the database answers. A handler that finds the store gone
            makes the loop leave the broker (its unacked messages go back once) and
            wait until the store answers, instead of handing the same message back
            over and over: each return counts toward the queue's delivery limit, and an
            outage longer than a few seconds would dead-letter healthy messages.
        concurrency: handler threads (1: the handler runs on the loop's own thread).
        """
        self._amqp_url = amqp_url
        self._queues = list(queues)
        self._handler = handler
        self._store_ready = store_ready
        self._prefetch_of = prefetch if callable(prefetch) else (lambda _queue: prefetch)
        self._on_connect = on_connect
        self._backoff_max_s = backoff_max_s
        self._concurrency = max(1, concurrency)
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
            except Exception:
                # Nothing may end a consumer's thread but a stop: a bug in a library or
                # here is logged and the loop connects again (unacked messages return).
                log.exception("consumer_failed", retry_in_s=backoff_s)
                self.stop_requested.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self._backoff_max_s)

    def _wait_for_store(self) -> None:
        log.warning("consumer_paused_for_store")
        while not self.stop_requested.is_set() and not self._store_ready():
            self.stop_requested.wait(STORE_PROBE_INTERVAL_S)
        log.info("consumer_resumed")

    def _consume_once(self) -> None:
        connection = connect(self._amqp_url)
        pool: _HandlerPool | None = None
        try:
            with translate_broker_errors(self._amqp_url):
                channel = connection.channel()
                if self._on_connect:
                    self._on_connect(channel)
                publisher = ConfirmingPublisher(connection, self._amqp_url)
                if self._concurrency > 1:
                    pool = _HandlerPool(self, connection, channel, publisher)
                self._qos = 0
                for queue in self._queues:
                    self._consume(channel, publisher, queue, pool)
                log.info(
                    "consumer_started", queues=len(self._queues), concurrency=self._concurrency
                )
                while not self.stop_requested.is_set():
                    connection.process_data_events(time_limit=0.5)
                    if pool is not None:
                        pool.raise_if_broken()
                    if connection.is_closed:
                        # A handler's publish found the link gone (its error went back to
                        # the handler's thread); pika cannot be asked for events again.
                        raise BrokerUnavailable(
                            f"the connection to {_where(self._amqp_url)} closed"
                        )
                if pool is not None:
                    pool.drain()
        finally:
            if pool is not None:
                pool.close()
            close_quietly(connection)

    def _consume(
        self,
        channel: BlockingChannel,
        publisher: ConfirmingPublisher,
        queue: str,
        pool: _HandlerPool | None,
    ) -> None:
        # basic.qos applies to the consumers started after it on the channel.
        prefetch = self._prefetch_of(queue)
        if prefetch != self._qos:
            channel.basic_qos(prefetch_count=prefetch)
            self._qos = prefetch

        def on_message(
            _channel: BlockingChannel,
            method: Basic.Deliver,
            properties: pika.BasicProperties,
            body: bytes,
        ) -> None:
            message = IncomingMessage(
                queue, properties, body, bool(method.redelivered), method.routing_key or ""
            )
            if pool is not None:
                pool.submit(message, method.delivery_tag)
                return
            if self._settle(message, publisher):
                channel.basic_ack(method.delivery_tag)
            else:
                channel.basic_nack(method.delivery_tag, requeue=True)

        channel.basic_consume(queue, on_message)

    def _settle(self, message: IncomingMessage, publisher: Publisher) -> bool:
        """Run the handler: True to ack, False to return the message to its queue.

        Raises:
            BrokerUnavailable: the link is gone; the unacked message comes back later.
            _StorePause: the store is gone; the loop leaves the broker until it is back.
        """
        try:
            self._handler(message, publisher)
        except BrokerUnavailable:
            raise
        except StoreUnavailable as exc:
            log.warning("store_unavailable", reason=exc.reason, message_id=message.message_id)
            raise _StorePause from exc  # closing the connection returns the message
        except CONNECTION_ERRORS as exc:
            raise BrokerUnavailable(f"the link to RabbitMQ broke: {exc!r}") from exc
        except Exception:
            # A bug or an unforeseen input: never crash the worker. The queue's delivery
            # limit dead-letters a message that keeps failing.
            log.exception("handler_failed", message_id=message.message_id, queue=message.queue)
            return False
        return True


class _HandlerPool:
    """The handler threads of one connection, and the way back to its thread."""

    def __init__(
        self,
        loop: ConsumerLoop,
        connection: BlockingConnection,
        channel: BlockingChannel,
        publisher: ConfirmingPublisher,
    ) -> None:
        self._loop = loop
        self._connection = connection
        self._channel = channel
        self._closed = threading.Event()
        self._publisher = _LoopThreadPublisher(connection, publisher, self._closed)
        self._executor = ThreadPoolExecutor(loop._concurrency, thread_name_prefix="handler")
        self._broken: BaseException | None = None
        self._in_flight: set[Future[None]] = set()

    def submit(self, message: IncomingMessage, delivery_tag: int) -> None:
        """Hand one message to the next free handler thread."""
        future = self._executor.submit(self._run, message, delivery_tag)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

    def drain(self) -> None:
        """On a requested stop: finish what the handlers hold and deliver their acks."""
        while self._in_flight and self._broken is None:
            self._connection.process_data_events(time_limit=0.1)
        self._connection.process_data_events(time_limit=0)

    def raise_if_broken(self) -> None:
        """Re-raise, on the loop's thread, what made a handler give up the connection."""
        if self._broken is not None:
            raise self._broken

    def close(self) -> None:
        """Let the running handlers finish (their acks are lost with the connection)."""
        self._closed.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self, message: IncomingMessage, delivery_tag: int) -> None:
        if self._broken is not None:
            return  # the connection is going: the message comes back to some consumer
        try:
            ack = self._loop._settle(message, self._publisher)
        except (BrokerUnavailable, _StorePause) as exc:
            self._broken = exc
            return
        settle = self._channel.basic_ack if ack else self._nack
        with contextlib.suppress(*CONNECTION_ERRORS, pika.exceptions.ConnectionWrongStateError):
            self._connection.add_callback_threadsafe(functools.partial(settle, delivery_tag))

    def _nack(self, delivery_tag: int) -> None:
        self._channel.basic_nack(delivery_tag, requeue=True)


class _LoopThreadPublisher:
    """Publishes for a handler thread on the loop's thread, and waits for the confirm."""

    def __init__(
        self,
        connection: BlockingConnection,
        publisher: ConfirmingPublisher,
        closed: threading.Event,
    ) -> None:
        self._connection = connection
        self._publisher = publisher
        self._closed = closed

    def publish(
        self, exchange: str, routing_key: str, properties: pika.BasicProperties, body: bytes
    ) -> None:
        """Publish on the loop's channel; return once confirmed, or raise what it raised."""
        self._on_loop_thread(
            functools.partial(self._publisher.publish, exchange, routing_key, properties, body)
        )

    def declare(self, declaration: Callable[[BlockingChannel], None]) -> None:
        """Run a declaration on the loop's publishing channel."""
        self._on_loop_thread(functools.partial(self._publisher.declare, declaration))

    def _on_loop_thread(self, call: Callable[[], None]) -> None:
        done = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                call()
            except BaseException as exc:  # noqa: BLE001 (re-raised on the handler's thread)
                failure.append(exc)
            finally:
                done.set()

        try:
            self._connection.add_callback_threadsafe(run)
        except pika.exceptions.ConnectionWrongStateError as exc:
            raise BrokerUnavailable("the consumer's connection to RabbitMQ closed") from exc
        while not done.wait(0.5):
            if self._closed.is_set():
                raise BrokerUnavailable("the consumer's connection to RabbitMQ closed")
        if failure:
            raise failure[0]


def _where(amqp_url: str) -> str:
    parameters = pika.URLParameters(amqp_url)
    return f"RabbitMQ at {parameters.host}:{parameters.port}"
