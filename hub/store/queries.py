"""Read-side queries over the store: what the monitoring API and the operators' CLI show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from hub.states import DeliveryStatus
from hub.store.models import AttemptRow, DeliveryRow, MessageRow
from hub.store.pages import Cursor
from hub.store.repository import (
    DEAD_DELIVERY_COLUMNS,
    DeadDelivery,
    LateReceipt,
    Store,
    aware,
    late_receipt_condition,
    utcnow,
)
from hub.store.tables import DELIVERIES


def status_counts(store: Store) -> dict[str, int]:
    """How many messages stand in each status."""
    with store.session() as session:
        rows = session.execute(
            select(MessageRow.status, func.count()).group_by(MessageRow.status)
        ).all()
        return {str(status): int(count) for status, count in rows}


def late_receipt_counts(store: Store, now: datetime | None = None) -> dict[str, int]:
    """Per endpoint, how many awaited receipts are overdue (counted in SQL, not listed)."""
    with store.reading() as connection:
        rows = connection.execute(
            select(DELIVERIES.c.endpoint, func.count())
            .where(late_receipt_condition(now or utcnow()))
            .group_by(DELIVERIES.c.endpoint)
        ).all()
    return {str(endpoint): int(count) for endpoint, count in rows}


def dead_delivery(store: Store, delivery_id: str) -> DeadDelivery | None:
    """One dead delivery, or None if there is no such delivery or it is not dead."""
    with store.reading() as connection:
        row = connection.execute(
            select(*DEAD_DELIVERY_COLUMNS).where(
                DELIVERIES.c.id == delivery_id,
                DELIVERIES.c.status == DeliveryStatus.DEAD.value,
            )
        ).first()
    return None if row is None else DeadDelivery(*row[:5], aware(row[5]))


def dead_cursor(item: DeadDelivery) -> Cursor:
    """The cursor of the page of dead deliveries after ``item``."""
    return Cursor(item.died_at, item.delivery_id)


def late_cursor(item: LateReceipt) -> Cursor:
    """The cursor of the page of late receipts after ``item``."""
    return Cursor(item.due_at, item.delivery_id)


def message_trace(store: Store, message_id: str) -> dict[str, Any] | None:
    """One message with its deliveries and every attempt, or None if unknown."""
    with store.session() as session:
        message = session.get(MessageRow, message_id)
        if message is None:
            return None
        deliveries = session.scalars(
            select(DeliveryRow).where(DeliveryRow.message_id == message_id)
        ).all()
        return {
            "envelope_id": message.id,
            "correlation_id": message.correlation_id,
            "document_type": message.document_type,
            "source": message.source,
            "destination": message.destination,
            "status": message.status,
            "status_reason": message.status_reason,
            "received_at": _iso(message.received_at),
            "delivered_at": _iso(message.delivered_at),
            "deliveries": [_delivery(session, delivery) for delivery in deliveries],
        }


def _delivery(session: Any, delivery: DeliveryRow) -> dict[str, Any]:
    attempts = session.scalars(
        select(AttemptRow).where(AttemptRow.delivery_id == delivery.id).order_by(AttemptRow.number)
    ).all()
    return {
        "delivery_id": delivery.id,
        "endpoint": delivery.endpoint,
        "route": delivery.route,
        "status": delivery.status,
        "attempts": [
            {
                "number": attempt.number,
                "started_at": _iso(attempt.started_at),
                "finished_at": _iso(attempt.finished_at),
                "outcome": attempt.outcome,
                "error": attempt.error_text,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in attempts
        ],
        "external_reference": delivery.external_reference,
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
