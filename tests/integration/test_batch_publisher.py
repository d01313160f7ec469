"""A batch is published at once; the broker's answer to each message comes back exactly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pika
import pytest
from relay_support import ReplyHoldingProxy, queue_depth

from hub.broker.connection import close_quietly, connect
from hub.broker.publisher import (
    BatchOutcome,
    Confirmation,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishInterrupted,
    PublishRefused,
)

CONFIRMED, RETURNED, NACKED = Confirmation.CONFIRMED, Confirmation.RETURNED, Confirmation.NACKED


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    """A quorum queue of this test's own, deleted afterwards."""
    name = f"test-batch-{uuid.uuid4().hex[:10]}"
    connection = connect(amqp_url)
    connection.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    close_quietly(connection)
    yield name
    connection = connect(amqp_url)
    connection.channel().queue_delete(name)
    close_quietly(connection)


@pytest.fixture
def publisher(amqp_url: str) -> Iterator[ConfirmingPublisher]:
    connection = connect(amqp_url)
    yield ConfirmingPublisher(connection, amqp_url)
    close_quietly(connection)


def message(routing_key: str, number: int) -> OutgoingMessage:
    properties = pika.BasicProperties(message_id=f"m{number}", delivery_mode=2)
    return OutgoingMessage("", routing_key, properties, f"body {number}".encode())


def test_every_message_of_a_batch_is_confirmed_and_queued(publisher, queue, amqp_url):
    outcome = publisher.publish_batch([message(queue, number) for number in range(300)])

    assert outcome.all_confirmed
    assert len(outcome.confirmed) == 300
    assert queue_depth(amqp_url, queue) == 300


def test_an_unroutable_message_is_named_and_the_others_are_confirmed(publisher, queue, amqp_url):
    batch = [message(queue, 0), message("nowhere", 1), message(queue, 2), message("nowhere", 3)]

    outcome = publisher.publish_batch(batch)

    assert outcome.confirmations == (CONFIRMED, RETURNED, CONFIRMED, RETURNED)
    assert queue_depth(amqp_url, queue) == 2


def test_messages_a_full_queue_refuses_are_nacked(publisher, amqp_url):
    name = f"test-batch-full-{uuid.uuid4().hex[:10]}"
    arguments = {"x-max-length": 2, "x-overflow": "reject-publish"}
    publisher.declare(lambda channel: channel.queue_declare(name, arguments=arguments))
    try:
        outcome = publisher.publish_batch([message(name, number) for number in range(4)])
        assert outcome.confirmations == (CONFIRMED, CONFIRMED, NACKED, NACKED)
    finally:
        publisher.declare(lambda channel: channel.queue_delete(name))


def test_publish_of_one_message_still_raises_when_it_is_refused(publisher, queue):
    publisher.publish("", queue, pika.BasicProperties(message_id="one"), b"x")
    with pytest.raises(PublishRefused, match="no queue takes routing key 'nowhere'"):
        publisher.publish("", "nowhere", pika.BasicProperties(message_id="two"), b"x")


def test_a_batch_cut_off_before_its_confirms_names_none_confirmed_though_all_were_queued(
    queue, amqp_url
):
    proxy = ReplyHoldingProxy("127.0.0.1", pika.URLParameters(amqp_url).port)
    url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"
    connection = connect(url)
    publisher = ConfirmingPublisher(connection, url)
    interrupted: list[PublishInterrupted] = []

    def publish() -> None:
        try:
            publisher.publish_batch([message(queue, number) for number in range(50)])
        except PublishInterrupted as exc:
            interrupted.append(exc)

    try:
        proxy.hold_replies()
        thread = threading.Thread(target=publish)
        thread.start()
        wait_until(lambda: queue_depth(amqp_url, queue) == 50)
        proxy.cut()
        thread.join(10)
    finally:
        proxy.close()
        close_quietly(connection)

    [error] = interrupted
    assert error.outcome == BatchOutcome((Confirmation.UNCONFIRMED,) * 50)
    assert error.outcome.confirmed == []


def wait_until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
