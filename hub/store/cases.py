"""Cases as the portal sees them: status reports from domain systems, and the case's history.

A case is opened when its first document arrives (its id is the correlation id); the
hub adds ``received`` and ``delivered`` itself, and the office's domain systems report
the rest through their adapters (``registered``, ``assigned``, ``waiting-for-citizen``,
``decision-issued``, ...). Who may read a case is decided by the caller's scope: its
party (the citizen or business that filed it) or its office.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from hub.store.repository import Store, add_case_event, aware, utcnow
from hub.store.tables import CASE_EVENTS, CASES

# What a domain system may report; the hub itself records received and delivered.
REPORTABLE_STATUSES = (
    "registered",
    "assigned",
    "waiting-for-citizen",
    "decision-issued",
    "decision-delivered",
    "closed",
)


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """One step of a case's history."""

    event: str
    occurred_at: datetime
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case with its history, as the portal shows it."""

    case_id: str
    office: str
    party: str | None
    status: str
    opened_at: datetime
    updated_at: datetime
    deadline_at: datetime | None
    history: list[CaseEvent]

    def as_json(self) -> dict[str, Any]:
        """The case as JSON-ready values (times in ISO 8601)."""
        return {
            "case_id": self.case_id,
            "office": self.office,
            "status": self.status,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deadline_at": self.deadline_at.isoformat() if self.deadline_at else None,
            "history": [
                {"event": e.event, "at": e.occurred_at.isoformat(), **_public(e.details)}
                for e in self.history
            ],
        }


def case_view(store: Store, case_id: str) -> CaseView | None:
    """The case ``case_id`` with its history in time order, or None."""
    with store.reading() as connection:
        case = connection.execute(select(CASES).where(CASES.c.id == case_id)).first()
        if case is None:
            return None
        events = connection.execute(
            select(CASE_EVENTS.c.event, CASE_EVENTS.c.occurred_at, CASE_EVENTS.c.details)
            .where(CASE_EVENTS.c.case_id == case_id)
            .order_by(CASE_EVENTS.c.occurred_at, CASE_EVENTS.c.id)
        ).all()
    return CaseView(
        case_id=case.id,
        office=case.office,
        party=case.party,
        status=case.status,
        opened_at=aware(case.opened_at),
        updated_at=aware(case.updated_at),
        deadline_at=aware(case.deadline_at) if case.deadline_at else None,
        history=[
            CaseEvent(event, aware(at), json.loads(details or "{}"))
            for event, at, details in events
        ],
    )


def report_case_status(
    store: Store, case_id: str, office: str, status: str, *, reported_by: str, note: str = ""
) -> bool:
    """Record that ``office``'s system moved case ``case_id`` to ``status``.

    Returns False, changing nothing, when the case does not exist or is another
    office's: a system reports on its own office's cases only.

    Raises:
        ValueError: ``status`` is not one a domain system may report.
    """
    if status not in REPORTABLE_STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(REPORTABLE_STATUSES)}")
    with store.transaction() as connection:
        now = utcnow()
        changed = connection.execute(
            update(CASES)
            .where(CASES.c.id == case_id, CASES.c.office == office)
            .values(status=status, updated_at=now)
        ).rowcount
        if not changed:
            return False
        notes = {"note": note} if note else {}
        add_case_event(connection, case_id, status, now, reported_by=reported_by, **notes)
        return True


def _public(details: dict[str, Any]) -> dict[str, Any]:
    """What of an event's details the portal may show (no internal ids beyond these)."""
    shown = ("reported_by", "note", "envelope_id", "from", "to")
    return {key: details[key] for key in shown if key in details}
