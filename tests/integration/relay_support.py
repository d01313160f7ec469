"""Helpers for the relay's tests: a proxy that withholds the broker's replies, queue drains."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from dataclasses import dataclass

import pika
from sqlalchemy import insert, select

from hub.envelope import Address, Envelope
from hub.store.repository import AcceptOutcome, Store, utcnow
from hub.store.tables import OUTBOX
from simulators.tcp_proxy import CuttableProxy

HELD_POLL_S = 0.02


class ReplyHoldingProxy(CuttableProxy):
    """A :class:`CuttableProxy` that can hold back what the broker sends (confirms included).

    While replies are held, the client's frames still reach the broker, so its publishes
    are queued while their confirms wait in the proxy: a relay killed or cut off then has
    published without ever learning it was confirmed. Held bytes are dropped on ``cut``.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._replies_flow = threading.Event()
        self._replies_flow.set()
        super().__init__(upstream_host, upstream_port)

    def hold_replies(self) -> None:
        """Stop forwarding the broker's bytes to the clients."""
        self._replies_flow.clear()

    def release_replies(self) -> None:
        """Forward the broker's bytes again."""
        self._replies_flow.set()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:  # type: ignore[override]
        try:
            from_broker = source.getpeername() == self._upstream
            while data := source.recv(65536):
                # Checked after recv: a reply that arrives just as the hold begins waits too.
                while from_broker and not self._replies_flow.wait(HELD_POLL_S):
                    if source.fileno() == -1:
                        return
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class QueuedMessage:
    """One message found on a queue."""

    message_id: str
    envelope_id: str
    body: bytes


def accept_documents(store: Store, count: int) -> list[str]:
    """Store ``count`` accepted documents (each with its outbox row); return their ids."""
    ids = []
    for number in range(count):
        envelope = Envelope(
            document_type="urn:test:relay",
            source="epuap",
            destination=Address("146501_1"),
            body=f"<pismo numer='{number}'>{uuid.uuid4()}</pismo>".encode(),
        )
        assert store.accept(envelope) is AcceptOutcome.ACCEPTED
        ids.append(str(envelope.envelope_id))
    return ids


def add_outbox_row(store: Store, message_id: str, routing_key: str) -> int:
    """A further outbox row for a stored message (as another hop of it would write)."""
    with store.transaction() as connection:
        connection.execute(
            insert(OUTBOX).values(
                message_id=message_id, routing_key=routing_key, created_at=utcnow()
            )
        )
        return int(
            connection.scalar(
                select(OUTBOX.c.id)
                .where(OUTBOX.c.routing_key == routing_key)
                .order_by(OUTBOX.c.id.desc())
            )
        )


def unsent_rows(store: Store) -> list[tuple[int, str, str]]:
    """(outbox id, message id, routing key) of every row not marked sent."""
    with store.reading() as connection:
        rows = connection.execute(
            select(OUTBOX.c.id, OUTBOX.c.message_id, OUTBOX.c.routing_key)
            .where(OUTBOX.c.sent_at.is_(None))
            .order_by(OUTBOX.c.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready on ``queue`` (a passive declare on a connection of its own)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def drain(amqp_url: str, queue: str) -> list[QueuedMessage]:
    """Take (and ack) every message on ``queue``, as a consumer would see them."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    found = []
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue)
            if method is None:
                return found
            headers = properties.headers or {}
            envelope_id = headers.get("hub-envelope-id", b"")
            if isinstance(envelope_id, bytes):
                envelope_id = envelope_id.decode()
            found.append(QueuedMessage(properties.message_id, envelope_id, body))
            channel.basic_ack(method.delivery_tag)
    finally:
        connection.close()
