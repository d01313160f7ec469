"""Prometheus metrics read from the store and the broker at scrape time.

The store already holds every state and attempt, so the figures are counted where they
live, on each scrape, rather than kept in process counters that would differ between the
hub's many worker processes. Attempt rows are never deleted, so the counts that only
grow are exposed as counters; the attempt-duration histogram is bucketed in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from hub.breaker import Circuit, CircuitBreakers
from hub.envelope import Address
from hub.errors import HubError
from hub.region import Region
from hub.settings import Settings
from hub.store.models import AttemptRow, DeliveryRow, MessageRow
from hub.store.queries import late_receipt_counts
from hub.store.repository import Store, utcnow
from monitoring import queries
from monitoring.logins import LOGIN_FAILED, LOGIN_THROTTLED, counters
from monitoring.queues import queue_depths

CIRCUIT_VALUES = {Circuit.CLOSED: 0, Circuit.OPEN: 1, Circuit.PAUSED: 2}
# Attempt durations in seconds: a loopback EOD answers in milliseconds, a platform in seconds.
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ENDPOINT_LABELS = ["endpoint", "office"]


class StoreCollector(Collector):
    """Messages, deliveries, attempts, late receipts, circuits, queues and refused logins, live."""

    def __init__(self, store: Store, settings: Settings, region: Region | None = None) -> None:
        self._store = store
        self._settings = settings
        self._region = region
        self._breakers = CircuitBreakers(store, settings)

    def collect(self) -> Iterator[Metric]:
        """One family per figure; called by prometheus_client on every scrape."""
        yield self._messages()
        yield from self._deliveries_and_attempts()
        late = GaugeMetricFamily("hub_receipts_late", "Deliveries whose awaited receipt is overdue")
        late_counts = late_receipt_counts(self._store)
        late.add_metric([], sum(late_counts.values()))
        yield late
        yield self._late_per_endpoint(late_counts)
        yield self._logins()
        yield self._circuits()
        yield from self._per_endpoint()
        yield self._attempt_durations()
        yield from self._queues()

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

    def _per_endpoint(self) -> Iterator[Metric]:
        known = list(self._region.endpoints) if self._region else []
        figures = queries.endpoint_figures(self._store, "hour", known)
        totals = self._attempt_totals()
        delivered = CounterMetricFamily(
            "hub_endpoint_delivered", "Deliveries completed", labels=ENDPOINT_LABELS
        )
        failed = CounterMetricFamily(
            "hub_endpoint_failed_attempts",
            "Attempts that failed (retried, dead or abandoned)",
            labels=ENDPOINT_LABELS,
        )
        retries = CounterMetricFamily(
            "hub_endpoint_retries", "Attempts that failed and were retried", labels=ENDPOINT_LABELS
        )
        dead = GaugeMetricFamily(
            "hub_endpoint_dead", "Deliveries dead now, awaiting an operator", labels=ENDPOINT_LABELS
        )
        backlog = GaugeMetricFamily(
            "hub_endpoint_backlog",
            "Deliveries waiting (pending, delivering, retrying)",
            labels=ENDPOINT_LABELS,
        )
        oldest = GaugeMetricFamily(
            "hub_endpoint_oldest_waiting_seconds",
            "Age of the oldest waiting delivery (0 with none waiting)",
            labels=ENDPOINT_LABELS,
        )
        now = utcnow()
        for item in figures:
            labels = [item.endpoint, item.office]
            counts = totals.get(item.endpoint, {})
            delivered.add_metric(labels, counts.get("delivered", 0))
            failed.add_metric(
                labels, sum(counts.get(outcome, 0) for outcome in queries.FAILED_OUTCOMES)
            )
            retries.add_metric(labels, counts.get("retry", 0))
            dead.add_metric(labels, item.dead_now)
            backlog.add_metric(labels, item.backlog)
            waited = (now - item.oldest_waiting_at).total_seconds() if item.oldest_waiting_at else 0
            oldest.add_metric(labels, max(waited, 0.0))
        yield from (delivered, failed, retries, dead, backlog, oldest)

    def _attempt_totals(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        with self._store.reading() as connection:
            for endpoint, outcome, count in connection.execute(
                select(DeliveryRow.endpoint, AttemptRow.outcome, func.count())
                .join(AttemptRow, AttemptRow.delivery_id == DeliveryRow.id)
                .group_by(DeliveryRow.endpoint, AttemptRow.outcome)
            ):
                totals.setdefault(endpoint, {})[outcome or "running"] = int(count)
        return totals

    def _attempt_durations(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "hub_attempt_duration_seconds",
            "How long delivery attempts took, per endpoint",
            labels=ENDPOINT_LABELS,
        )
        cumulative = [
            func.sum(case((AttemptRow.duration_ms <= bound * 1000, 1), else_=0))
            for bound in DURATION_BUCKETS_S
        ]
        with self._store.reading() as connection:
            rows = connection.execute(
                select(
                    DeliveryRow.endpoint,
                    func.count(),
                    func.sum(AttemptRow.duration_ms),
                    *cumulative,
                )
                .join(AttemptRow, AttemptRow.delivery_id == DeliveryRow.id)
                .where(AttemptRow.duration_ms.is_not(None))
                .group_by(DeliveryRow.endpoint)
            ).all()
        for endpoint, count, total_ms, *counts in rows:
            buckets: list[tuple[str, Any]] = [
                (str(bound), int(below or 0))
                for bound, below in zip(DURATION_BUCKETS_S, counts, strict=True)
            ]
            buckets.append(("+Inf", int(count)))
            family.add_metric(
                [endpoint, Address.parse(endpoint).office], buckets, float(total_ms or 0) / 1000
            )
        return family

    def _late_per_endpoint(self, counts: dict[str, int]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "hub_endpoint_receipts_late", "Awaited receipts overdue", labels=ENDPOINT_LABELS
        )
        for endpoint, count in sorted(counts.items()):
            family.add_metric([endpoint, Address.parse(endpoint).office], count)
        return family

    def _logins(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "hub_dashboard_login_failures",
            "Dashboard logins refused: a wrong name or password, or a try during a backoff",
            labels=["reason"],
        )
        counted = counters(self._store)
        for reason, counter in (("wrong", LOGIN_FAILED), ("throttled", LOGIN_THROTTLED)):
            family.add_metric([reason], counted.get(counter, 0))
        return family

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("hub_broker_up", "Whether RabbitMQ answered this scrape")
        depth = GaugeMetricFamily(
            "hub_queue_messages",
            "Messages ready in each of the hub's queues",
            labels=["queue", "kind"],
        )
        try:
            depths = queue_depths(self._settings.amqp_url, self._settings.topology)
        except HubError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for item in depths:
            if item.messages is None:
                continue
            depth.add_metric([item.queue, item.kind], item.messages)
        yield up
        yield depth
