"""Connecting to a broker that is not all there: the hub says what is wrong, and keeps trying.

A RabbitMQ node that has run out of file handles accepts TCP connections and then
never answers the AMQP handshake. pika reports that with an exception outside its
connection-error family; these tests hold the hub to translating it, so a consumer
loop waits and reconnects instead of its thread dying.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from hub.broker.connection import HANDSHAKE_HINT, connect
from hub.broker.consumer import ConsumerLoop
from hub.errors import BrokerUnavailable


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
    loop = ConsumerLoop(silent_broker, ["unused"], lambda message, publisher: None)
    runner = threading.Thread(target=loop.run, daemon=True)
    runner.start()

    runner.join(timeout=3.0)  # long enough for at least two handshakes to time out
    still_running = runner.is_alive()
    loop.stop_requested.set()
    runner.join(timeout=10.0)

    assert still_running, "the consumer thread died on a handshake timeout"
    assert not runner.is_alive()
