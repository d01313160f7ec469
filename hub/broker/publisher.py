"""Publishing with publisher confirms and ``mandatory``: a message is either queued or we know.

A batch is published at once and its confirms awaited together (asynchronous confirms,
DESIGN.md: about ten times cheaper for the broker than a blocking confirm per message);
the caller learns, per message, whether the broker confirmed it, returned it as
unroutable or nacked it, and acts on the confirmed ones only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pika
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from hub.broker.connection import translate_broker_errors
from hub.errors import BrokerUnavailable, HubError


class PublishRefused(HubError):
    """The broker nacked the message, or no queue would take it (returned as unroutable)."""

    code = "publish-refused"


class Confirmation(StrEnum):
    """What the broker said about one published message."""

    CONFIRMED = "confirmed"  # queued (persisted by every queue it was routed to)
    RETURNED = "returned"  # no queue takes its routing key (``mandatory``)
    NACKED = "nacked"  # the broker could not take it (e.g. a queue refusing overflow)
    UNCONFIRMED = "unconfirmed"  # no answer before the connection dropped: may be queued


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One persistent message to publish."""

    exchange: str
    routing_key: str
    properties: pika.BasicProperties
    body: bytes


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The broker's answer to each message of a batch, in the batch's order."""

    confirmations: tuple[Confirmation, ...]

    def indices(self, confirmation: Confirmation) -> list[int]:
        """Positions (in the batch) of the messages that got ``confirmation``."""
        return [index for index, got in enumerate(self.confirmations) if got is confirmation]

    @property
    def confirmed(self) -> list[int]:
        """Positions of the messages the broker confirmed: only these may count as sent."""
        return self.indices(Confirmation.CONFIRMED)

    @property
    def all_confirmed(self) -> bool:
        """Whether every message of the batch was confirmed."""
        return all(got is Confirmation.CONFIRMED for got in self.confirmations)


class PublishInterrupted(BrokerUnavailable):
    """The connection dropped during a batch; ``outcome`` holds what was confirmed before.

    The unconfirmed messages may or may not have been queued: publish them again (their
    consumers deduplicate by message id), never count them as sent.
    """

    def __init__(self, reason: str, outcome: BatchOutcome) -> None:
        super().__init__(reason)
        self.outcome = outcome


class _ConfirmTracker:
    """Maps the broker's confirms and returns onto the messages of the batch in flight.

    In confirm mode the broker numbers a channel's publishes 1, 2, 3, ... (delivery
    tags); an ack or nack names one tag, or with ``multiple`` every tag up to it. A
    ``basic.return`` carries no tag, but arrives before the confirm of its message, and
    returns come in publish order: so it belongs to the earliest unanswered message of
    the batch with its exchange, routing key and message id.
    """

    def __init__(self) -> None:
        self.next_tag = 1
        self.pending: dict[int, int] = {}  # delivery tag -> position in the batch
        self.messages: Sequence[OutgoingMessage] = ()
        self.confirmations: list[Confirmation] = []

    def begin(self, messages: Sequence[OutgoingMessage]) -> None:
        self.pending = {}
        self.messages = messages
        self.confirmations = [Confirmation.UNCONFIRMED] * len(messages)

    def published(self, position: int) -> None:
        self.pending[self.next_tag] = position
        self.next_tag += 1

    def outcome(self) -> BatchOutcome:
        return BatchOutcome(tuple(self.confirmations))

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        refused = isinstance(method, pika.spec.Basic.Nack)
        for tag in self._answered_tags(method.delivery_tag, method.multiple):
            position = self.pending.pop(tag)
            if refused:
                self.confirmations[position] = Confirmation.NACKED
            elif self.confirmations[position] is Confirmation.UNCONFIRMED:
                self.confirmations[position] = Confirmation.CONFIRMED

    def on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        returned = (method.exchange, method.routing_key, properties.message_id)
        for position in self.pending.values():
            message = self.messages[position]
            unanswered = self.confirmations[position] is Confirmation.UNCONFIRMED
            if unanswered and returned == _identity(message):
                self.confirmations[position] = Confirmation.RETURNED
                return

    def _answered_tags(self, delivery_tag: int, multiple: bool) -> list[int]:
        if not multiple:
            # A tag of an earlier, interrupted batch is not ours to answer any more.
            return [delivery_tag] if delivery_tag in self.pending else []
        # ``pending`` is in publish order, so the tags covered come first.
        covered = []
        for tag in self.pending:
            if tag > delivery_tag:
                break
            covered.append(tag)
        return covered


def _identity(message: OutgoingMessage) -> tuple[str, str, str | None]:
    return (message.exchange, message.routing_key, message.properties.message_id)


class ConfirmingPublisher:
    """Publishes on its own channel in confirm mode: a batch at once, confirms awaited together.

    pika's ``BlockingChannel.confirm_delivery`` makes every ``basic_publish`` wait for its
    own confirm (a broker round trip per message). This class instead turns confirm mode
    on for the pika channel underneath the blocking one, with its own confirm and return
    callbacks, publishes a whole batch through it and then drives the connection's I/O
    until every message is answered. That reaches into two of the blocking channel's
    private members (``_impl``, ``_flush_output``); a SelectConnection publisher would
    avoid that, but needs a second connection and an I/O thread per process, and the
    consumers that publish from their message handlers would have to hand every publish
    across threads. ``tests/integration/test_batch_publisher.py`` holds pika to it.
    """

    def __init__(self, connection: BlockingConnection, amqp_url: str) -> None:
        self._amqp_url = amqp_url
        self._tracker = _ConfirmTracker()
        with translate_broker_errors(amqp_url):
            self._channel: BlockingChannel = connection.channel()
            self._channel_impl = self._channel._impl
            selected: list[object] = []
            self._channel_impl.confirm_delivery(
                ack_nack_callback=self._tracker.on_confirm, callback=selected.append
            )
            self._channel_impl.add_on_return_callback(self._tracker.on_return)
            self._channel._flush_output(lambda: bool(selected))

    def declare(self, declaration: Callable[[BlockingChannel], None]) -> None:
        """Run ``declaration`` (queues, bindings) on this channel before publishing to them.

        Raises:
            BrokerUnavailable: the connection dropped.
        """
        with translate_broker_errors(self._amqp_url):
            declaration(self._channel)

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        """Publish every message (persistent, ``mandatory``) and wait for all their confirms.

        Returns:
            Per message: confirmed, returned (unroutable) or nacked.

        Raises:
            PublishInterrupted: the connection or channel dropped before every message was
                answered; its ``outcome`` names the ones confirmed until then.
        """
        self._tracker.begin(messages)
        try:
            with translate_broker_errors(self._amqp_url):
                for position, message in enumerate(messages):
                    self._channel_impl.basic_publish(
                        message.exchange,
                        message.routing_key,
                        message.body,
                        properties=message.properties,
                        mandatory=True,
                    )
                    self._tracker.published(position)
                self._channel._flush_output(lambda: not self._tracker.pending)
        except BrokerUnavailable as exc:
            raise PublishInterrupted(exc.reason, self._tracker.outcome()) from exc
        if self._tracker.pending:
            # The wait also ends, without an error, when the channel was closed from our side.
            raise PublishInterrupted(
                "the channel closed before every confirm arrived", self._tracker.outcome()
            )
        return self._tracker.outcome()

    def publish(
        self, exchange: str, routing_key: str, properties: pika.BasicProperties, body: bytes
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm.

        Raises:
            PublishRefused: nacked, or unroutable (no queue bound for ``routing_key``).
            BrokerUnavailable: the connection dropped; the caller must not ack its input.
        """
        outcome = self.publish_batch([OutgoingMessage(exchange, routing_key, properties, body)])
        [confirmation] = outcome.confirmations
        if confirmation is Confirmation.RETURNED:
            raise PublishRefused(
                f"no queue takes routing key {routing_key!r} on exchange {exchange!r}"
            )
        if confirmation is Confirmation.NACKED:
            raise PublishRefused(f"broker refused message for {routing_key!r}")
