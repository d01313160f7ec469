"""Consumer loops against the real broker: how they share work, and a broker not all there.

A RabbitMQ node that has run out of file handles accepts TCP connections and then
never answers the AMQP handshake. pika reports that with an exception outside its
connection-error family; these tests hold the hub to translating it, so a consumer
loop waits and reconnects instead of its thread dying.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pika
import pytest

from hub.broker.connection import HANDSHAKE_HINT, connect
from hub.broker.consumer import ConsumerLoop, IncomingMessage
from hub.broker.publisher import ConfirmingPublisher
from hub.broker.topology import DELIVERY_LIMIT
from hub.errors import BrokerUnavailable, StoreUnavailable

BURST = 20


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A loopback port that takes connections and never says a word (a starved node)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept_forever, daemon=True)
    acceptor.start()
    # stack_timeout bounds the whole connection workflow (TCP, AMQP handshake, login).
    yield f"amqp://guest:guest@127.0.0.1:{port}/%2F?stack_timeout=1"
    stop.set()
    acceptor.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_broker_that_never_finishes_the_handshake_is_reported_with_the_likely_cause(
    silent_broker,
):
    with pytest.raises(BrokerUnavailable) as raised:
        connect(silent_broker)

    assert HANDSHAKE_HINT in raised.value.reason
    assert "127.0.0.1" in raised.value.reason


def test_a_consumer_loop_keeps_retrying_a_broker_that_never_finishes_the_handshake(
    silent_broker,
):
    loop = ConsumerLoop(
        silent_broker, ["unused"], lambda message, publisher: None, store_ready=lambda: True
    )
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()

    runner.join(timeout=3.0)  # long enough for at least two handshakes to time out
    still_running = runner.is_alive()
    loop.stop_requested.set()
    runner.join(timeout=10.0)

    assert still_running, "the consumer thread died on a handshake timeout"
    assert not runner.is_alive()


@pytest.fixture
def endpoint_queue(amqp_url) -> Iterator[str]:
    """A quorum queue like an endpoint's, removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}.deliver.eod@14"
    connection = connect(amqp_url)
    connection.channel().queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    yield name
    connection.channel().queue_delete(name)
    connection.close()


def publish_burst(amqp_url: str, queue: str, count: int) -> None:
    connection = connect(amqp_url)
    publisher = ConfirmingPublisher(connection, amqp_url)
    for number in range(count):
        publisher.publish("", queue, pika.BasicProperties(message_id=str(number)), b"x")
    connection.close()


@pytest.mark.parametrize("prefetch", [1, lambda queue: 1])
def test_a_burst_to_one_endpoint_is_shared_by_the_consumers_not_hoarded_by_one(
    amqp_url, endpoint_queue, prefetch
):
    handled_by: Counter[str] = Counter()
    lock = threading.Lock()

    def handler_named(name: str):
        def handle(message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
            time.sleep(0.05)  # a delivery takes a while
            with lock:
                handled_by[name] += 1

        return handle

    # The burst waits in the queue (as after a router's batch, or a worker's restart).
    publish_burst(amqp_url, endpoint_queue, BURST)
    loops = [
        ConsumerLoop(
            amqp_url,
            [endpoint_queue],
            handler_named(name),
            prefetch=prefetch,
            store_ready=lambda: True,
        )
        for name in ("first", "second")
    ]
    runners = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 30
    while sum(handled_by.values()) < BURST and time.monotonic() < deadline:
        time.sleep(0.1)
    for loop in loops:
        loop.stop_requested.set()
    for runner in runners:
        runner.join(timeout=10)

    assert sum(handled_by.values()) == BURST
    # With one unacked message per consumer, the broker hands the next to whichever is free.
    assert min(handled_by["first"], handled_by["second"]) >= BURST // 4, handled_by


def test_two_worker_processes_with_handler_pools_share_a_burst_and_each_thread_works(
    amqp_url, endpoint_queue
):
    handled_by: Counter[str] = Counter()
    lock = threading.Lock()
    burst = 120

    def handler_named(name: str):
        def handle(message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
            time.sleep(0.02)  # a delivery waits on its destination
            with lock:
                handled_by[f"{name}/{threading.current_thread().name}"] += 1

        return handle

    publish_burst(amqp_url, endpoint_queue, burst)
    loops = [
        ConsumerLoop(
            amqp_url,
            [endpoint_queue],
            handler_named(name),
            prefetch=4,
            store_ready=lambda: True,
            concurrency=4,
        )
        for name in ("first", "second")
    ]
    runners = [threading.Thread(target=loop.run, daemon=True) for loop in loops]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 30
    while sum(handled_by.values()) < burst and time.monotonic() < deadline:
        time.sleep(0.1)
    for loop in loops:
        loop.stop_requested.set()
    for runner in runners:
        runner.join(timeout=10)

    assert sum(handled_by.values()) == burst  # each once: acked, nothing redelivered
    per_worker = Counter(name.split("/")[0] for name in handled_by.elements())
    assert min(per_worker["first"], per_worker["second"]) >= burst // 4, per_worker
    assert len(handled_by) == 8, handled_by  # every handler thread of both took some
    # A stop lets the handlers finish and sends their acks before leaving: nothing waits.
    connection = connect(amqp_url)
    waiting = connection.channel().queue_declare(endpoint_queue, passive=True).method
    connection.close()
    assert waiting.message_count == 0


@pytest.fixture
def limited_queue(amqp_url) -> Iterator[str]:
    """A work queue with the hub's delivery limit, dead-lettering to a queue of its own."""
    name = f"test-{uuid.uuid4().hex[:10]}.deliver.eod@14"
    connection = connect(amqp_url)
    channel = connection.channel()
    channel.queue_declare(f"{name}.dead", durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{name}.dead",
        },
    )
    yield name
    channel.queue_delete(name)
    channel.queue_delete(f"{name}.dead")
    connection.close()


def test_a_database_outage_longer_than_the_delivery_limit_parks_no_message(amqp_url, limited_queue):
    outage = threading.Event()
    outage.set()
    tries: list[str] = []
    handled: list[str] = []

    def handle(message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
        tries.append(message.message_id)
        if outage.is_set():
            raise StoreUnavailable("database unavailable: connection refused")
        handled.append(message.message_id)

    loop = ConsumerLoop(
        amqp_url, [limited_queue], handle, prefetch=1, store_ready=lambda: not outage.is_set()
    )
    publish_burst(amqp_url, limited_queue, 1)
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()
    # Longer than DELIVERY_LIMIT returns at the old pace of one a second.
    time.sleep(DELIVERY_LIMIT + 3)
    outage.clear()
    deadline = time.monotonic() + 20
    while not handled and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.stop_requested.set()
    runner.join(timeout=10)

    assert handled == ["0"]
    # The message went back once for the outage, not once a second.
    assert len(tries) == 2
    connection = connect(amqp_url)
    parked = connection.channel().queue_declare(f"{limited_queue}.dead", passive=True)
    connection.close()
    assert parked.method.message_count == 0
