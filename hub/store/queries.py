"""Read-side queries over the store: what the monitoring API and the operators' CLI show."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.store.models import AttemptRow, DeliveryRow, MessageRow
from hub.store.repository import Store


def status_counts(store: Store) -> dict[str, int]:
    """How many messages stand in each status."""
    with store.session() as session:
        rows = session.execute(
            select(MessageRow.status, func.count()).group_by(MessageRow.status)
        ).all()
        return {str(status): int(count) for status, count in rows}


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
