"""The outbox relay: publishes what the store committed, then marks it sent; chains the audit log.

Each batch of outbox rows is published at once and its confirms awaited together; only
the rows the broker confirmed are marked sent. A crash between publish and mark
republishes those rows; consumers deduplicate by message id, so nothing is lost and
nothing takes effect twice. A row the broker returned (no queue takes its routing key)
or nacked stays unsent, and the relay pauses and reconnects (declaring the topology
again) before it tries that row once more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from pika.adapters.blocking_connection import BlockingConnection

from hub.audit import AuditChainer
from hub.broker.codec import to_amqp
from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.broker.publisher import (
    BatchOutcome,
    Confirmation,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishInterrupted,
    PublishRefused,
)
from hub.broker.topology import Topology
from hub.errors import BrokerUnavailable, StoreUnavailable
from hub.isolation import BurstMeter
from hub.logging import get_logger
from hub.settings import Settings
from hub.singleton import SingletonLease
from hub.store.repository import OutboxItem, Store

log = get_logger(__name__)

RELAY_LOCK = "outbox-relay"
# While the outbox is empty, look for audit rows written without an outbox row (an
# operator's action, an endpoint paused) this often: the chain has no deadline of
# relay_idle_s, and every look is a query.
IDLE_CHAIN_CHECK_S = 1.0


class OutboxRelay:
    """Moves outbox rows to RabbitMQ with publisher confirms."""

    def __init__(self, store: Store, settings: Settings, topology: Topology, holder: str) -> None:
        self._store = store
        self._settings = settings
        self._topology = topology
        self._lease = SingletonLease(store, RELAY_LOCK, holder, settings.singleton_lease_s)
        # The relay runs once per database, which the audit chain needs of its chainer.
        self._audit = AuditChainer(store, settings)
        # The relay runs once per database, so it meters each office's documents exactly.
        self._bursts = BurstMeter(settings.burst_deliveries, settings.burst_window_s)
        self._next_chain_check = 0.0
        self.stop_requested = threading.Event()

    def run(self) -> None:
        """Relay until stopped, waiting out broker and database outages."""
        backoff_s = 0.5
        while not self.stop_requested.is_set():
            try:
                self._run_connected()
                backoff_s = 0.5
            except (BrokerUnavailable, StoreUnavailable, PublishRefused) as exc:
                # A refused publish means the topology is missing (a queue deleted by
                # hand): reconnecting declares it again; the rows stay unsent meanwhile.
                log.warning("relay_paused", code=exc.code, reason=exc.reason, retry_in_s=backoff_s)
                self.stop_requested.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self._settings.broker_backoff_max_s)
        self._lease.release()

    def _run_connected(self) -> None:
        connection = connect(self._settings.amqp_url)
        try:
            with translate_broker_errors(self._settings.amqp_url):
                channel = connection.channel()
                self._topology.declare(channel)
                publisher = ConfirmingPublisher(connection, self._settings.amqp_url)
                log.info("relay_started")
                self._relay_while_connected(connection, publisher)
        finally:
            close_quietly(connection)

    def _relay_while_connected(
        self, connection: BlockingConnection, publisher: ConfirmingPublisher
    ) -> None:
        busy = True
        while not self.stop_requested.is_set():
            if not self._lease.held():
                connection.process_data_events(time_limit=self._settings.singleton_lease_s / 3)
                continue
            if busy or self._work_waiting():
                busy = self._relay_round(publisher)
                if busy:
                    continue
            # Nothing to send or chain: wait, keeping heartbeats flowing. The next look
            # is one indexed query, so an idle relay costs little at this pace.
            connection.process_data_events(time_limit=self._settings.relay_idle_s)

    def _work_waiting(self) -> bool:
        """Whether outbox rows wait, or the audit chain is due for a look."""
        return self._store.outbox_waiting() or time.monotonic() >= self._next_chain_check

    def _relay_round(self, publisher: ConfirmingPublisher) -> bool:
        """Relay one batch and chain what is pending; return whether there was any work."""
        relayed = self.relay_batch(publisher)
        linked = self._audit.link_pending()
        if relayed or linked:
            return True
        self._audit.checkpoint_if_due()
        self._next_chain_check = time.monotonic() + IDLE_CHAIN_CHECK_S
        return False

    def relay_batch(self, publisher: ConfirmingPublisher) -> int:
        """Publish one batch of unsent rows, mark the confirmed ones sent; return how many.

        Raises:
            PublishRefused: a row was returned or nacked; the others were marked sent.
            PublishInterrupted: the connection dropped; what was confirmed before is marked.
        """
        items = self._store.unsent_outbox(self._settings.relay_batch_size)
        if not items:
            return 0
        messages = [self._message_of(item) for item in items]
        try:
            outcome = publisher.publish_batch(messages)
        except PublishInterrupted as exc:
            # Mark what was confirmed before the link dropped; the rest is published again.
            self._mark_confirmed(items, exc.outcome)
            raise
        self._mark_confirmed(items, outcome)
        if not outcome.all_confirmed:
            raise PublishRefused(_refusals(items, outcome))
        return len(items)

    def _message_of(self, item: OutboxItem) -> OutgoingMessage:
        properties, body = to_amqp(item.envelope, str(item.envelope.envelope_id))
        routing_key = item.routing_key
        if routing_key == self._topology.accepted_key:
            # A burst of documents to one office waits in the bulk lane to be routed, so
            # the other offices' documents are not routed (sealed, mapped) behind it.
            lane = self._bursts.lane_of(item.envelope.destination.office)
            routing_key = self._topology.accepted_key_in(lane)
        return OutgoingMessage(self._topology.exchange, routing_key, properties, body)

    def _mark_confirmed(self, items: Sequence[OutboxItem], outcome: BatchOutcome) -> None:
        self._store.mark_outbox_sent([items[index].outbox_id for index in outcome.confirmed])


def _refusals(items: Sequence[OutboxItem], outcome: BatchOutcome) -> str:
    """One line naming what the broker would not take (the rows stay unsent)."""
    returned = [items[index].routing_key for index in outcome.indices(Confirmation.RETURNED)]
    nacked = [items[index].routing_key for index in outcome.indices(Confirmation.NACKED)]
    parts = []
    if returned:
        parts.append(f"{len(returned)} row(s) unroutable (routing keys {sorted(set(returned))})")
    if nacked:
        parts.append(f"{len(nacked)} row(s) nacked (routing keys {sorted(set(nacked))})")
    confirmed = len(outcome.confirmed)
    return f"{'; '.join(parts)}; the other {confirmed} of the batch were sent"
