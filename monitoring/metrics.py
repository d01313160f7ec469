"""Prometheus metrics read from the store at scrape time.

The store already holds every state and attempt, so the figures are counted where they
live, on each scrape, rather than kept in process counters that would differ between the
hub's many worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hub.breaker import Circuit, CircuitBreakers
from hub.settings import Settings
from hub.store.models import AttemptRow, DeliveryRow, MessageRow
from hub.store.repository import Store

CIRCUIT_VALUES = {Circuit.CLOSED: 0, Circuit.OPEN: 1, Circuit.PAUSED: 2}


class StoreCollector(Collector):
    """Messages, deliveries, attempts, late receipts and circuits, counted in the store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._breakers = CircuitBreakers(store, settings)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One family per figure; called by prometheus_client on every scrape."""
        yield self._messages()
        yield from self._deliveries_and_attempts()
        late = GaugeMetricFamily("hub_receipts_late", "Deliveries whose awaited receipt is overdue")
        late.add_metric([], len(self._store.late_receipts()))
        yield late
        yield self._circuits()

    def _messages(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("hub_messages", "Messages by status", labels=["status"])
        with self._store.reading() as connection:
            rows = connection.execute(
                select(MessageRow.status, func.count()).group_by(MessageRow.status)
            ).all()
        for status, count in rows:
            family.add_metric([status], count)
        return family

    def _deliveries_and_attempts(self) -> Iterator[GaugeMetricFamily]:
        deliveries = GaugeMetricFamily(
            "hub_deliveries", "Deliveries by endpoint and status", labels=["endpoint", "status"]
        )
        attempts = GaugeMetricFamily(
            "hub_attempts",
            "Delivery attempts by endpoint and outcome",
            labels=["endpoint", "outcome"],
        )
        with self._store.reading() as connection:
            for endpoint, status, count in connection.execute(
                select(DeliveryRow.endpoint, DeliveryRow.status, func.count()).group_by(
                    DeliveryRow.endpoint, DeliveryRow.status
                )
            ):
                deliveries.add_metric([endpoint, status], count)
            for endpoint, outcome, count in connection.execute(
                select(DeliveryRow.endpoint, AttemptRow.outcome, func.count())
                .join(AttemptRow, AttemptRow.delivery_id == DeliveryRow.id)
                .group_by(DeliveryRow.endpoint, AttemptRow.outcome)
            ):
                attempts.add_metric([endpoint, outcome or "running"], count)
        yield deliveries
        yield attempts

    def _circuits(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "hub_endpoint_circuit",
            "Circuit per endpoint: 0 closed, 1 open, 2 paused",
            labels=["endpoint"],
        )
        for row in self._breakers.states():
            family.add_metric([row.endpoint], CIRCUIT_VALUES[Circuit(row.state)])
        return family
