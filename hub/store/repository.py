"""The store: every state change of a message is written here, in short transactions.

The database, not the broker, owns state and attempt counters. Each public method is
one transaction; callers ack broker messages only after it returned.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy.exc
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.envelope import Address, Envelope
from hub.states import (
    CLAIMABLE_DELIVERY_STATUSES,
    FINAL_DELIVERY_STATUSES,
    DeliveryStatus,
    MessageStatus,
)
from hub.store.database import create_store_engine, translate_store_errors
from hub.store.models import (
    AttemptRow,
    CaseEventRow,
    CaseRow,
    DeliveryRow,
    MessageRow,
    OutboxRow,
    SingletonLockRow,
)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class AcceptOutcome(StrEnum):
    """What became of a document handed to the store."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One row of the outbox with the envelope it publishes."""

    outbox_id: int
    routing_key: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """A delivery the router decided on, before it is stored."""

    endpoint: str
    route: str


@dataclass(frozen=True, slots=True)
class DeliveryTicket:
    """A stored delivery as the routing worker needs it: what to publish, and whether to."""

    delivery_id: str
    endpoint: str
    status: DeliveryStatus


class ClaimResult(StrEnum):
    """Outcome of trying to take a delivery for one attempt."""

    CLAIMED = "claimed"
    ALREADY_FINAL = "already_final"
    HELD_ELSEWHERE = "held_elsewhere"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed delivery: the attempt row to finish and the attempt's number."""

    result: ClaimResult
    attempt_id: int = 0
    attempt_number: int = 0
    lease_left_s: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    """Where a failed attempt leaves its delivery."""

    status: DeliveryStatus
    attempts: int


class Store:
    """Repository over the hub's tables; one method, one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, database_url: str) -> Store:
        """A store on a new engine for ``database_url``."""
        return cls(create_store_engine(database_url))

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work; database trouble surfaces as ``StoreUnavailable``."""
        with translate_store_errors(), self._sessions.begin() as session:
            yield session

    # ---- inbound -------------------------------------------------------------------

    def accept(
        self,
        envelope: Envelope,
        *,
        external_id: str | None = None,
        submitted_at: datetime | None = None,
    ) -> AcceptOutcome:
        """Store an inbound document and its outbox row in one transaction.

        ``external_id`` is the sender's identity of the document (e.g. the ePUAP
        mailbox, sending time and digest): a document seen before is not stored again.
        """
        return self._store_inbound(
            envelope, MessageStatus.ACCEPTED, None, external_id, submitted_at
        )

    def reject(
        self,
        envelope: Envelope,
        reason: str,
        *,
        external_id: str | None = None,
        submitted_at: datetime | None = None,
    ) -> AcceptOutcome:
        """Keep a document the hub can never process, with its reason; nothing is queued."""
        return self._store_inbound(
            envelope, MessageStatus.REJECTED, reason, external_id, submitted_at
        )

    def _store_inbound(
        self,
        envelope: Envelope,
        status: MessageStatus,
        reason: str | None,
        external_id: str | None,
        submitted_at: datetime | None,
    ) -> AcceptOutcome:
        try:
            with self.transaction() as session:
                if external_id and _external_id_known(session, external_id):
                    return AcceptOutcome.DUPLICATE
                self._insert_message(session, envelope, status, reason, external_id, submitted_at)
                if status is MessageStatus.ACCEPTED:
                    self._open_case(session, envelope)
                    session.execute(
                        insert(OutboxRow).values(
                            message_id=str(envelope.envelope_id),
                            routing_key="accepted",
                            created_at=utcnow(),
                        )
                    )
        except sqlalchemy.exc.IntegrityError:
            # Two receivers raced on the same external document; the other one stored it.
            if external_id and self._external_id_stored(external_id):
                return AcceptOutcome.DUPLICATE
            raise
        return AcceptOutcome(status.value)

    def _external_id_stored(self, external_id: str) -> bool:
        with self.transaction() as session:
            return _external_id_known(session, external_id)

    @staticmethod
    def _insert_message(
        session: Session,
        envelope: Envelope,
        status: MessageStatus,
        reason: str | None,
        external_id: str | None,
        submitted_at: datetime | None,
    ) -> None:
        now = utcnow()
        session.execute(
            insert(MessageRow).values(
                id=str(envelope.envelope_id),
                correlation_id=envelope.correlation_id,
                external_id=external_id,
                document_type=envelope.document_type,
                source=envelope.source,
                destination=str(envelope.destination),
                content_type=envelope.content_type,
                headers=json.dumps(dict(envelope.headers), ensure_ascii=False),
                body=envelope.body,
                body_sha256=envelope.body_sha256,
                size_bytes=len(envelope.body),
                status=status.value,
                status_reason=reason,
                submitted_at=submitted_at,
                received_at=now,
                updated_at=now,
            )
        )

    @staticmethod
    def _open_case(session: Session, envelope: Envelope) -> None:
        now = utcnow()
        if session.get(CaseRow, envelope.correlation_id) is None:
            session.execute(
                insert(CaseRow).values(
                    id=envelope.correlation_id,
                    office=envelope.destination.office,
                    status="received",
                    opened_at=now,
                    updated_at=now,
                )
            )
        _add_case_event(session, envelope.correlation_id, "received", now, envelope_id=str(envelope.envelope_id))

    # ---- outbox --------------------------------------------------------------------

    def unsent_outbox(self, limit: int) -> list[OutboxItem]:
        """The oldest outbox rows not yet published, with their envelopes."""
        with self.transaction() as session:
            rows = session.execute(
                select(OutboxRow.id, OutboxRow.routing_key, MessageRow)
                .join(MessageRow, MessageRow.id == OutboxRow.message_id)
                .where(OutboxRow.sent_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(limit)
            ).all()
            return [OutboxItem(row[0], row[1], envelope_from_row(row[2])) for row in rows]

    def mark_outbox_sent(self, outbox_ids: Sequence[int]) -> None:
        """Record that these rows were published and confirmed."""
        if not outbox_ids:
            return
        with self.transaction() as session:
            session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(outbox_ids)).values(sent_at=utcnow())
            )

    def count_unsent_outbox(self) -> int:
        """How many outbox rows wait for the relay."""
        with self.transaction() as session:
            count = session.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.sent_at.is_(None))
            )
            return int(count or 0)

    # ---- routing -------------------------------------------------------------------

    def message_status(self, message_id: str) -> MessageStatus | None:
        """The message's current status, or None if the store has never seen it."""
        with self.transaction() as session:
            status = session.scalar(select(MessageRow.status).where(MessageRow.id == message_id))
            return MessageStatus(status) if status else None

    def record_routing(
        self, message_id: str, planned: Sequence[PlannedDelivery]
    ) -> list[DeliveryTicket]:
        """Create the message's deliveries (once) and mark it routed.

        Idempotent: a redelivered routing message finds the deliveries it made before
        and gets them back with their current status.
        """
        with self.transaction() as session:
            existing = {
                row.endpoint: row
                for row in session.scalars(
                    select(DeliveryRow).where(DeliveryRow.message_id == message_id)
                )
            }
            now = utcnow()
            for plan in planned:
                if plan.endpoint not in existing:
                    row = DeliveryRow(
                        id=str(uuid.uuid4()),
                        message_id=message_id,
                        endpoint=plan.endpoint,
                        route=plan.route,
                        status=DeliveryStatus.PENDING.value,
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(row)
                    existing[plan.endpoint] = row
            session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id, MessageRow.status == MessageStatus.ACCEPTED)
                .values(status=MessageStatus.ROUTED.value, updated_at=now)
            )
            return [
                DeliveryTicket(row.id, row.endpoint, DeliveryStatus(row.status))
                for row in existing.values()
            ]

    def reject_message(self, message_id: str, reason: str) -> None:
        """Mark an accepted message rejected (e.g. nobody handles it), with the reason."""
        with self.transaction() as session:
            session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id)
                .values(status=MessageStatus.REJECTED.value, status_reason=reason, updated_at=utcnow())
            )

    # ---- delivery ------------------------------------------------------------------

    def claim_delivery(self, delivery_id: str, worker: str, lease_s: float) -> Claim:
        """Take a delivery for one attempt, holding a lease so no one else tries at once.

        A delivery whose lease ran out (its worker died mid-attempt) can be claimed again;
        the abandoned attempt is closed as such.
        """
        with self.transaction() as session:
            now = utcnow()
            claimed = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, _claimable(now))
                .values(
                    status=DeliveryStatus.DELIVERING.value,
                    attempts=DeliveryRow.attempts + 1,
                    lease_until=now + timedelta(seconds=lease_s),
                    updated_at=now,
                )
                .returning(DeliveryRow.attempts, DeliveryRow.message_id)
            ).first()
            if claimed is None:
                return _why_not_claimed(session, delivery_id, now)
            attempt_number, message_id = claimed
            _close_abandoned_attempts(session, delivery_id, now)
            attempt_id = session.execute(
                insert(AttemptRow)
                .values(delivery_id=delivery_id, number=attempt_number, worker=worker, started_at=now)
                .returning(AttemptRow.id)
            ).scalar_one()
            _set_message_status(session, message_id, MessageStatus.DELIVERING, now)
            return Claim(ClaimResult.CLAIMED, attempt_id, attempt_number)

    def complete_delivery(
        self, delivery_id: str, attempt_id: int, external_reference: str | None
    ) -> None:
        """Record a successful attempt; the message is delivered once all its deliveries are."""
        with self.transaction() as session:
            now = utcnow()
            _finish_attempt(session, attempt_id, now, "delivered", None, None)
            message_id = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(
                    status=DeliveryStatus.DELIVERED.value,
                    delivered_at=now,
                    lease_until=None,
                    last_error=None,
                    external_reference=external_reference,
                    updated_at=now,
                )
                .returning(DeliveryRow.message_id)
            ).scalar_one()
            self._refresh_message(session, message_id, now)

    def fail_delivery(
        self,
        delivery_id: str,
        attempt_id: int,
        error: Exception,
        *,
        give_up: bool,
        next_attempt_at: datetime | None,
    ) -> FailureOutcome:
        """Record a failed attempt; the delivery goes to ``retrying`` or, if ``give_up``, ``dead``."""
        status = DeliveryStatus.DEAD if give_up else DeliveryStatus.RETRYING
        error_text = str(error)[:4000]
        with self.transaction() as session:
            now = utcnow()
            outcome = "dead" if give_up else "retry"
            _finish_attempt(session, attempt_id, now, outcome, type(error).__name__, error_text)
            message_id, attempts = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(
                    status=status.value,
                    lease_until=None,
                    next_attempt_at=next_attempt_at,
                    last_error=f"{type(error).__name__}: {error_text}",
                    updated_at=now,
                )
                .returning(DeliveryRow.message_id, DeliveryRow.attempts)
            ).one()
            self._refresh_message(session, message_id, now)
            return FailureOutcome(status, attempts)

    def _refresh_message(self, session: Session, message_id: str, now: datetime) -> None:
        statuses = {
            DeliveryStatus(status)
            for status in session.scalars(
                select(DeliveryRow.status).where(DeliveryRow.message_id == message_id)
            )
        }
        status = _message_status_from(statuses)
        values: dict[str, object] = {"status": status.value, "updated_at": now}
        if status is MessageStatus.DELIVERED:
            values["delivered_at"] = now
            _add_case_event(session, _case_of(session, message_id), "delivered", now, envelope_id=message_id)
        session.execute(update(MessageRow).where(MessageRow.id == message_id).values(**values))

    # ---- single-instance jobs ------------------------------------------------------

    def acquire_singleton(self, name: str, holder: str, lease_s: float) -> bool:
        """Take or renew the lease ``name``; False if another live holder has it."""
        try:
            with self.transaction() as session:
                now = utcnow()
                expires = now + timedelta(seconds=lease_s)
                lock = session.get(SingletonLockRow, name, with_for_update=True)
                if lock is None:
                    session.add(SingletonLockRow(name=name, holder=holder, expires_at=expires))
                    return True
                if lock.holder != holder and _aware(lock.expires_at) > now:
                    return False
                lock.holder, lock.expires_at = holder, expires
                return True
        except sqlalchemy.exc.IntegrityError:
            return False

    def release_singleton(self, name: str, holder: str) -> None:
        """Give the lease up so a successor need not wait for it to expire."""
        with self.transaction() as session:
            lock = session.get(SingletonLockRow, name)
            if lock is not None and lock.holder == holder:
                session.delete(lock)


def envelope_from_row(row: MessageRow) -> Envelope:
    """Rebuild the envelope a message row stores."""
    return Envelope(
        envelope_id=uuid.UUID(row.id),
        correlation_id=row.correlation_id,
        document_type=row.document_type,
        source=row.source,
        destination=Address.parse(row.destination),
        content_type=row.content_type,
        headers=json.loads(row.headers),
        body=row.body,
        created_at=_aware(row.received_at),
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the hub writes is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _external_id_known(session: Session, external_id: str) -> bool:
    found = session.scalar(select(MessageRow.id).where(MessageRow.external_id == external_id))
    return found is not None


def _claimable(now: datetime) -> object:
    return or_(
        DeliveryRow.status.in_([status.value for status in CLAIMABLE_DELIVERY_STATUSES]),
        and_(DeliveryRow.status == DeliveryStatus.DELIVERING.value, DeliveryRow.lease_until < now),
    )


def _why_not_claimed(session: Session, delivery_id: str, now: datetime) -> Claim:
    row = session.get(DeliveryRow, delivery_id)
    if row is None:
        return Claim(ClaimResult.UNKNOWN)
    if DeliveryStatus(row.status) in FINAL_DELIVERY_STATUSES:
        return Claim(ClaimResult.ALREADY_FINAL)
    lease_until = _aware(row.lease_until) if row.lease_until else now
    return Claim(ClaimResult.HELD_ELSEWHERE, lease_left_s=(lease_until - now).total_seconds())


def _close_abandoned_attempts(session: Session, delivery_id: str, now: datetime) -> None:
    session.execute(
        update(AttemptRow)
        .where(AttemptRow.delivery_id == delivery_id, AttemptRow.finished_at.is_(None))
        .values(finished_at=now, outcome="abandoned", error_text="the worker stopped mid-attempt")
    )


def _finish_attempt(
    session: Session,
    attempt_id: int,
    now: datetime,
    outcome: str,
    error_class: str | None,
    error_text: str | None,
) -> None:
    started = session.scalar(select(AttemptRow.started_at).where(AttemptRow.id == attempt_id))
    duration_ms = (now - _aware(started)).total_seconds() * 1000 if started else None
    session.execute(
        update(AttemptRow)
        .where(AttemptRow.id == attempt_id)
        .values(
            finished_at=now,
            outcome=outcome,
            error_class=error_class,
            error_text=error_text,
            duration_ms=duration_ms,
        )
    )


def _set_message_status(
    session: Session, message_id: str, status: MessageStatus, now: datetime
) -> None:
    session.execute(
        update(MessageRow)
        .where(MessageRow.id == message_id)
        .values(status=status.value, updated_at=now)
    )


def _message_status_from(statuses: set[DeliveryStatus]) -> MessageStatus:
    if statuses and statuses == {DeliveryStatus.DELIVERED}:
        return MessageStatus.DELIVERED
    if DeliveryStatus.DEAD in statuses:
        return MessageStatus.DEAD
    if DeliveryStatus.RETRYING in statuses:
        return MessageStatus.RETRYING
    if DeliveryStatus.DELIVERING in statuses:
        return MessageStatus.DELIVERING
    return MessageStatus.ROUTED


def _add_case_event(session: Session, case_id: str, event: str, now: datetime, **details: str) -> None:
    session.execute(
        insert(CaseEventRow).values(
            case_id=case_id, event=event, details=json.dumps(details), occurred_at=now
        )
    )


def _case_of(session: Session, message_id: str) -> str:
    return str(session.scalar(select(MessageRow.correlation_id).where(MessageRow.id == message_id)))
