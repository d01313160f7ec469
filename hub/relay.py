"""The outbox relay: publishes what the store committed, then marks it sent; chains the audit log.

A crash between publish and mark republishes the row; consumers deduplicate by
message id, so nothing is lost and nothing takes effect twice.
"""

from __future__ import annotations

import threading

from hub.audit import AuditChainer
from hub.broker.codec import to_amqp
from hub.broker.connection import close_quietly, connect, translate_broker_errors
from hub.broker.publisher import ConfirmingPublisher, PublishRefused
from hub.broker.topology import Topology
from hub.errors import BrokerUnavailable, StoreUnavailable
from hub.logging import get_logger
from hub.settings import Settings
from hub.singleton import SingletonLease
from hub.store.repository import Store

log = get_logger(__name__)

RELAY_LOCK = "outbox-relay"


class OutboxRelay:
    """Moves outbox rows to RabbitMQ with publisher confirms."""

    def __init__(self, store: Store, settings: Settings, topology: Topology, holder: str) -> None:
        self._store = store
        self._settings = settings
        self._topology = topology
        self._lease = SingletonLease(store, RELAY_LOCK, holder, settings.singleton_lease_s)
        # The relay runs once per database, which the audit chain needs of its chainer.
        self._audit = AuditChainer(store, settings)
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
                while not self.stop_requested.is_set():
                    if not self._lease.held():
                        connection.process_data_events(
                            time_limit=self._settings.singleton_lease_s / 3
                        )
                    elif self.relay_batch(publisher) == 0 and self._audit.link_pending() == 0:
                        # Nothing to send or chain: wait, keeping heartbeats flowing.
                        self._audit.checkpoint_if_due()
                        connection.process_data_events(time_limit=self._settings.relay_idle_s)
        finally:
            close_quietly(connection)

    def relay_batch(self, publisher: ConfirmingPublisher) -> int:
        """Publish one batch of unsent rows and mark them sent; return how many."""
        items = self._store.unsent_outbox(self._settings.relay_batch_size)
        sent: list[int] = []
        try:
            for item in items:
                properties, body = to_amqp(item.envelope, str(item.envelope.envelope_id))
                publisher.publish(self._topology.exchange, item.routing_key, properties, body)
                sent.append(item.outbox_id)
        finally:
            # Mark what was confirmed even if the batch broke off half-way.
            self._store.mark_outbox_sent(sent)
        return len(sent)
