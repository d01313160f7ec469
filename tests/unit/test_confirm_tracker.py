"""The broker's confirms and returns land on the right message of a batch."""

from types import SimpleNamespace

import pika
import pika.spec

from hub.broker.publisher import Confirmation, OutgoingMessage, _ConfirmTracker

CONFIRMED, RETURNED, NACKED = Confirmation.CONFIRMED, Confirmation.RETURNED, Confirmation.NACKED
UNCONFIRMED = Confirmation.UNCONFIRMED


def batch(*routing_keys: str) -> list[OutgoingMessage]:
    return [
        OutgoingMessage("hub", key, pika.BasicProperties(message_id=f"m{number}"), b"")
        for number, key in enumerate(routing_keys)
    ]


def published(messages: list[OutgoingMessage], tracker: _ConfirmTracker | None = None):
    tracker = tracker or _ConfirmTracker()
    tracker.begin(messages)
    for position in range(len(messages)):
        tracker.published(position)
    return tracker


def ack(tag: int, multiple: bool = False) -> SimpleNamespace:
    return SimpleNamespace(method=pika.spec.Basic.Ack(delivery_tag=tag, multiple=multiple))


def nack(tag: int) -> SimpleNamespace:
    return SimpleNamespace(method=pika.spec.Basic.Nack(delivery_tag=tag))


def returned(message: OutgoingMessage) -> tuple:
    method = pika.spec.Basic.Return(exchange=message.exchange, routing_key=message.routing_key)
    return (None, method, message.properties, b"")


def test_a_multiple_ack_confirms_every_message_up_to_its_tag():
    tracker = published(batch("a", "a", "a", "a"))
    tracker.on_confirm(ack(3, multiple=True))
    assert tracker.outcome().confirmations == (CONFIRMED,) * 3 + (UNCONFIRMED,)
    assert tracker.pending == {4: 3}


def test_a_return_marks_the_earliest_unanswered_message_with_its_key_and_id():
    messages = batch("a", "nowhere", "a", "nowhere")
    tracker = published(messages)
    tracker.on_return(*returned(messages[1]))
    tracker.on_confirm(ack(2, multiple=True))  # the broker may fold the returned one in
    tracker.on_return(*returned(messages[3]))
    tracker.on_confirm(ack(3))
    tracker.on_confirm(ack(4))
    assert tracker.outcome().confirmations == (CONFIRMED, RETURNED, CONFIRMED, RETURNED)
    assert tracker.outcome().confirmed == [0, 2]


def test_a_nack_refuses_its_message_only():
    tracker = published(batch("a", "a", "a"))
    tracker.on_confirm(ack(1))
    tracker.on_confirm(nack(2))
    tracker.on_confirm(ack(3))
    assert tracker.outcome().confirmations == (CONFIRMED, NACKED, CONFIRMED)
    assert not tracker.outcome().all_confirmed


def test_tags_keep_counting_across_batches_on_one_channel():
    tracker = published(batch("a", "a"))
    tracker.on_confirm(ack(2, multiple=True))
    published(batch("a", "a"), tracker)
    tracker.on_confirm(ack(1))  # late, of the batch before: not this batch's to answer
    tracker.on_confirm(ack(3))
    assert tracker.outcome().confirmations == (CONFIRMED, UNCONFIRMED)
    assert tracker.pending == {4: 1}
