"""The store: every state change of a message is written here, in short transactions.

The database, not the broker, owns state and attempt counters. Each public method is
one transaction; callers ack broker messages only after it returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy.exc
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.envelope import Address, Envelope
from hub.errors import CaseNotFound, StoreUnavailable
from hub.receipts import Evidence
from hub.states import (
    CLAIMABLE_DELIVERY_STATUSES,
    FINAL_DELIVERY_STATUSES,
    DeliveryStatus,
    IllegalTransition,
    MessageStatus,
    check_transition,
    predecessors,
)
from hub.store.database import READ_ONLY_OPTION, create_store_engine, translate_store_errors
from hub.store.pages import MAX_PAGE, Cursor, endpoint_of_office, keyset_after
from hub.store.tables import (
    ATTEMPTS,
    AUDIT,
    CASE_EVENTS,
    CASES,
    DELIVERIES,
    LOCKS,
    MESSAGES,
    OUTBOX,
    QUARANTINE,
    RECEIPTS,
    SIGNATURE_CHECKS,
)

INSERT_MESSAGE = insert(MESSAGES)
INSERT_OUTBOX = insert(OUTBOX)
# The relay's idle look: served by the (sent_at, id) index, no row read beyond one.
SELECT_FIRST_UNSENT = select(OUTBOX.c.id).where(OUTBOX.c.sent_at.is_(None)).limit(1)
INSERT_CASE = insert(CASES)
INSERT_CASE_EVENT = insert(CASE_EVENTS)
INSERT_DELIVERY = insert(DELIVERIES)
INSERT_RECEIPT = insert(RECEIPTS)
INSERT_AUDIT = insert(AUDIT)
INSERT_ATTEMPT = insert(ATTEMPTS).returning(ATTEMPTS.c.id)
# What a dead delivery is shown with (``DeadDelivery``), wherever it is listed.
DEAD_DELIVERY_COLUMNS = (
    DELIVERIES.c.id,
    DELIVERIES.c.message_id,
    DELIVERIES.c.endpoint,
    DELIVERIES.c.attempts,
    DELIVERIES.c.last_error,
    DELIVERIES.c.updated_at,
)
SELECT_CASE = select(CASES.c.id).where(CASES.c.id == bindparam("case_id"))
SELECT_BY_EXTERNAL_ID = select(MESSAGES.c.id).where(
    MESSAGES.c.external_id == bindparam("external_id")
)
SELECT_MESSAGE_STATUS = select(MESSAGES.c.status).where(MESSAGES.c.id == bindparam("message_id"))
SELECT_CASE_OF_MESSAGE = select(MESSAGES.c.correlation_id).where(
    MESSAGES.c.id == bindparam("message_id")
)
SELECT_DELIVERIES_OF = select(DELIVERIES.c.id, DELIVERIES.c.endpoint, DELIVERIES.c.status).where(
    DELIVERIES.c.message_id == bindparam("message_id")
)
SELECT_DELIVERY_STATUSES = select(DELIVERIES.c.status).where(
    DELIVERIES.c.message_id == bindparam("message_id")
)
MARK_ROUTED = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("message_id"), MESSAGES.c.status == bindparam("accepted"))
    .values(status=MessageStatus.ROUTED.value, updated_at=bindparam("now"))
)
# Status updates name the statuses they may start from, so the state machine of
# hub.states is enforced where the state lives, also against concurrent writers.
SET_MESSAGE_STATUS = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id == bindparam("message_id"),
        MESSAGES.c.status.in_(bindparam("allowed_from", expanding=True)),
    )
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)
MARK_DELIVERED = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id == bindparam("message_id"),
        MESSAGES.c.status.in_(bindparam("allowed_from", expanding=True)),
    )
    .values(
        status=MessageStatus.DELIVERED.value,
        updated_at=bindparam("now"),
        delivered_at=bindparam("now"),
    )
)
CLAIM_DELIVERY = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("delivery_id"),
        or_(
            DELIVERIES.c.status.in_(bindparam("claimable", expanding=True)),
            and_(
                DELIVERIES.c.status == DeliveryStatus.DELIVERING.value,
                DELIVERIES.c.lease_until < bindparam("now"),
            ),
        ),
    )
    .values(
        status=DeliveryStatus.DELIVERING.value,
        attempts=DELIVERIES.c.attempts + 1,
        lease_until=bindparam("lease_until"),
        updated_at=bindparam("now"),
    )
    .returning(
        DELIVERIES.c.attempts,
        DELIVERIES.c.message_id,
        func.coalesce(DELIVERIES.c.retry_since, DELIVERIES.c.created_at),
    )
)
CLOSE_ABANDONED_ATTEMPTS = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.delivery_id == bindparam("abandoned_of"), ATTEMPTS.c.finished_at.is_(None))
    .values(
        finished_at=bindparam("now"),
        outcome="abandoned",
        error_text="the worker stopped mid-attempt",
    )
)
FINISH_ATTEMPT = (
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("attempt_id"))
    .values(
        finished_at=bindparam("now"),
        outcome=bindparam("outcome"),
        error_class=bindparam("error_class"),
        error_text=bindparam("error_text"),
        duration_ms=bindparam("duration_ms"),
    )
)
FINISH_DELIVERY = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        lease_until=None,
        delivered_at=bindparam("delivered_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        last_error=bindparam("last_error"),
        external_reference=bindparam("external_reference"),
        updated_at=bindparam("now"),
    )
    .returning(DELIVERIES.c.message_id)
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
class StoredInbound:
    """What the store holds of an inbound document under its sender's id."""

    message_id: str
    body_sha256: str
    status: str
    reason: str | None


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


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What verifying a document's signature found."""

    valid: bool
    method: str = "xades"
    signer: str | None = None
    signed_at: datetime | None = None
    certificate_serial: str | None = None
    reason: str | None = None
    position: int = 1
    form: str = "enveloped"
    covers_document: bool = True


@dataclass(frozen=True, slots=True)
class AwaitedReceipt:
    """A receipt a destination owes for a delivery, and when it is due."""

    kind: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class DeadDelivery:
    """A delivery parked for an operator."""

    delivery_id: str
    message_id: str
    endpoint: str
    attempts: int
    last_error: str | None
    died_at: datetime


@dataclass(frozen=True, slots=True)
class LateReceipt:
    """A delivery whose awaited receipt is overdue."""

    message_id: str
    delivery_id: str
    endpoint: str
    awaited: str
    due_at: datetime
    external_reference: str | None


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
    started_at: datetime | None = None
    retry_since: datetime | None = None

    @property
    def age_s(self) -> float:
        """How long the delivery has been trying, at this attempt's start."""
        if self.started_at is None or self.retry_since is None:
            return 0.0
        return (self.started_at - self.retry_since).total_seconds()


class Store:
    """Repository over the hub's tables; one method, one transaction.

    Writes use SQLAlchemy Core on prebuilt statements executed with parameter dicts:
    building ORM statements per call costs milliseconds of CPU, which on the hot path
    would hold the hub far below what the database can do.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{READ_ONLY_OPTION: True})
        self._sessions = sessionmaker(self._reader, expire_on_commit=False)
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps
        # in growing steps (up to 100 ms) before it looks again. Threads of one process
        # queue on a lock of their own instead, and are handed the database at once.
        self._writer_turn: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @classmethod
    def from_url(cls, database_url: str) -> Store:
        """A store on a new engine for ``database_url``."""
        return cls(create_store_engine(database_url))

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work on a Core connection; trouble surfaces as ``StoreUnavailable``."""
        with self._writer_turn, translate_store_errors(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only unit of work, which on SQLite leaves the write lock to writers."""
        with translate_store_errors(), self._reader.begin() as connection:
            yield connection

    def reachable(self) -> bool:
        """Whether the database answers now (a consumer waits for this after an outage)."""
        try:
            with self.reading() as connection:
                connection.execute(select(1))
        except StoreUnavailable:
            return False
        return True

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session for the read side (monitoring, traces)."""
        with translate_store_errors(), self._sessions.begin() as session:
            yield session

    # ---- inbound -------------------------------------------------------------------

    def accept(
        self,
        envelope: Envelope,
        *,
        external_id: str | None = None,
        submitted_at: datetime | None = None,
        case_owner: str | None = None,
    ) -> AcceptOutcome:
        """Store an inbound document, its case and its outbox row in one transaction.

        ``external_id`` is the sender's identity of the document (e.g. the ePUAP
        mailbox, sending time and digest): a document seen before is not stored again.
        ``case_owner`` is the office an authenticated caller acts for: the case the
        document names must then exist and be that office's, checked (and, for a
        forwarded document, moved) in this transaction.

        Raises:
            CaseNotFound: ``case_owner`` is given and the named case is not its; nothing
                is stored.
        """
        return self._store_inbound(
            envelope, MessageStatus.ACCEPTED, None, external_id, submitted_at, case_owner
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

    def _store_inbound(  # noqa: PLR0917 (private; its two callers name what they pass)
        self,
        envelope: Envelope,
        status: MessageStatus,
        reason: str | None,
        external_id: str | None,
        submitted_at: datetime | None,
        case_owner: str | None = None,
    ) -> AcceptOutcome:
        try:
            with self.transaction() as connection:
                if external_id and _external_id_known(connection, external_id):
                    return AcceptOutcome.DUPLICATE
                now = utcnow()
                if case_owner is not None:
                    _claim_case_of(connection, envelope.correlation_id, case_owner, now)
                connection.execute(
                    INSERT_MESSAGE,
                    _message_values(
                        envelope,
                        status=status,
                        reason=reason,
                        external_id=external_id,
                        submitted_at=submitted_at,
                        now=now,
                    ),
                )
                audit_event(
                    connection,
                    str(envelope.envelope_id),
                    status.value,
                    now,
                    source=envelope.source,
                    destination=str(envelope.destination),
                    sha256=envelope.body_sha256,
                    reason=reason,
                )
                if status is MessageStatus.ACCEPTED:
                    _open_case(connection, envelope, now)
                    connection.execute(
                        INSERT_OUTBOX,
                        {
                            "message_id": str(envelope.envelope_id),
                            "routing_key": "accepted",
                            "created_at": now,
                        },
                    )
        except sqlalchemy.exc.IntegrityError:
            # Two receivers raced on the same external document; the other one stored it.
            if external_id and self._external_id_stored(external_id):
                return AcceptOutcome.DUPLICATE
            raise
        return AcceptOutcome(status.value)

    def message_id_by_external_id(self, external_id: str) -> str | None:
        """The id of the message stored under the sender's ``external_id``, if any."""
        with self.reading() as connection:
            found = connection.scalar(SELECT_BY_EXTERNAL_ID, {"external_id": external_id})
            return None if found is None else str(found)

    def inbound_by_external_id(self, external_id: str) -> StoredInbound | None:
        """The document stored under the sender's ``external_id``: id, digest and status."""
        with self.reading() as connection:
            row = connection.execute(
                select(
                    MESSAGES.c.id,
                    MESSAGES.c.body_sha256,
                    MESSAGES.c.status,
                    MESSAGES.c.status_reason,
                ).where(MESSAGES.c.external_id == external_id)
            ).first()
        return (
            None
            if row is None
            else StoredInbound(row.id, row.body_sha256, row.status, row.status_reason)
        )

    def message_id_by_delivery_reference(self, external_reference: str) -> str | None:
        """The message whose delivery the destination registered as ``external_reference``."""
        with self.reading() as connection:
            found = connection.scalar(
                select(DELIVERIES.c.message_id).where(
                    DELIVERIES.c.external_reference == external_reference
                )
            )
            return None if found is None else str(found)

    def _external_id_stored(self, external_id: str) -> bool:
        with self.transaction() as connection:
            return _external_id_known(connection, external_id)

    # ---- outbox --------------------------------------------------------------------

    def unsent_outbox(self, limit: int) -> list[OutboxItem]:
        """The oldest outbox rows not yet published, with their envelopes."""
        with self.reading() as connection:
            rows = connection.execute(
                select(OUTBOX.c.id.label("outbox_id"), OUTBOX.c.routing_key, *MESSAGES.c)
                .join(MESSAGES, MESSAGES.c.id == OUTBOX.c.message_id)
                .where(OUTBOX.c.sent_at.is_(None))
                .order_by(OUTBOX.c.id)
                .limit(limit)
            ).all()
            return [
                OutboxItem(row.outbox_id, row.routing_key, envelope_from_row(row)) for row in rows
            ]

    def mark_outbox_sent(self, outbox_ids: Sequence[int]) -> None:
        """Record that these rows were published and confirmed."""
        if not outbox_ids:
            return
        with self.transaction() as connection:
            connection.execute(
                update(OUTBOX).where(OUTBOX.c.id.in_(outbox_ids)).values(sent_at=utcnow())
            )

    def outbox_waiting(self) -> bool:
        """Whether any outbox row waits for the relay (one indexed look, for its idle loop)."""
        with self.reading() as connection:
            return connection.scalar(SELECT_FIRST_UNSENT) is not None

    def count_unsent_outbox(self) -> int:
        """How many outbox rows wait for the relay."""
        with self.reading() as connection:
            count = connection.scalar(
                select(func.count()).select_from(OUTBOX).where(OUTBOX.c.sent_at.is_(None))
            )
            return int(count or 0)

    # ---- routing -------------------------------------------------------------------

    def message_status(self, message_id: str) -> MessageStatus | None:
        """The message's current status, or None if the store has never seen it."""
        with self.reading() as connection:
            status = connection.scalar(SELECT_MESSAGE_STATUS, {"message_id": message_id})
            return MessageStatus(status) if status else None

    def record_routing(
        self,
        message_id: str,
        planned: Sequence[PlannedDelivery],
        signature_checks: Sequence[SignatureCheck] = (),
        case_deadline_days: int | None = None,
    ) -> list[DeliveryTicket] | None:
        """Create the message's deliveries (once) and mark it routed.

        ``case_deadline_days``: the statutory deadline of the service the document was
        filed under; its case's deadline is counted from the case's opening with it.

        Idempotent: a redelivered routing message finds the deliveries it made before
        and gets them back with their current status. Returns None for a message the
        store has never seen, and no deliveries for one already rejected or dead.
        """
        with self.transaction() as connection:
            status = connection.scalar(SELECT_MESSAGE_STATUS, {"message_id": message_id})
            if status is None:
                return None
            if status in {MessageStatus.REJECTED, MessageStatus.DEAD}:
                return []
            existing = {
                row.endpoint: DeliveryTicket(row.id, row.endpoint, DeliveryStatus(row.status))
                for row in connection.execute(SELECT_DELIVERIES_OF, {"message_id": message_id})
            }
            now = utcnow()
            for plan in planned:
                if plan.endpoint not in existing:
                    ticket = DeliveryTicket(
                        str(uuid.uuid4()), plan.endpoint, DeliveryStatus.PENDING
                    )
                    connection.execute(
                        INSERT_DELIVERY, _delivery_values(ticket, message_id, plan.route, now)
                    )
                    existing[plan.endpoint] = ticket
            routed = connection.execute(
                MARK_ROUTED,
                {"message_id": message_id, "accepted": MessageStatus.ACCEPTED.value, "now": now},
            ).rowcount
            if routed:
                audit_event(connection, message_id, "routed", now, endpoints=sorted(existing))
                for check in signature_checks:
                    _insert_signature_check(connection, message_id, check, now)
                if case_deadline_days is not None:
                    _set_case_deadline(connection, message_id, case_deadline_days)
            return list(existing.values())

    def reject_message(self, message_id: str, reason: str) -> bool:
        """Mark a message rejected (e.g. nobody handles it), with the reason.

        Returns False if the store has never seen the message.

        Raises:
            IllegalTransition: the message has moved past the point of rejection.
        """
        with self.transaction() as connection:
            current = connection.scalar(SELECT_MESSAGE_STATUS, {"message_id": message_id})
            if current is None:
                return False
            check_transition(MessageStatus(current), MessageStatus.REJECTED)
            audit_event(connection, message_id, "rejected", utcnow(), reason=reason)
            connection.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == message_id)
                .values(
                    status=MessageStatus.REJECTED.value, status_reason=reason, updated_at=utcnow()
                )
            )
            return True

    # ---- delivery ------------------------------------------------------------------

    def claim_delivery(self, delivery_id: str, worker: str, lease_s: float) -> Claim:
        """Take a delivery for one attempt, holding a lease so no one else tries at once.

        A delivery whose lease ran out (its worker died mid-attempt) can be claimed again;
        the abandoned attempt is closed as such.
        """
        with self.transaction() as connection:
            now = utcnow()
            claimed = connection.execute(
                CLAIM_DELIVERY,
                {
                    "delivery_id": delivery_id,
                    "now": now,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "claimable": [status.value for status in CLAIMABLE_DELIVERY_STATUSES],
                },
            ).first()
            if claimed is None:
                return _why_not_claimed(connection, delivery_id, now)
            attempt_number, message_id, retry_since = claimed
            if attempt_number > 1:
                # An earlier attempt may have died with its worker; close it as abandoned.
                connection.execute(
                    CLOSE_ABANDONED_ATTEMPTS, {"abandoned_of": delivery_id, "now": now}
                )
            attempt_id = connection.execute(
                INSERT_ATTEMPT,
                {
                    "delivery_id": delivery_id,
                    "number": attempt_number,
                    "worker": worker,
                    "started_at": now,
                },
            ).scalar_one()
            _refresh_message(connection, message_id, now)
            return Claim(
                ClaimResult.CLAIMED,
                attempt_id,
                attempt_number,
                started_at=now,
                retry_since=aware(retry_since),
            )

    def complete_delivery(
        self,
        delivery_id: str,
        claim: Claim,
        external_reference: str | None,
        evidence: Sequence[Evidence] = (),
        awaited: AwaitedReceipt | None = None,
    ) -> None:
        """Record a successful attempt and the receipts the destination issued.

        ``awaited`` names a receipt still to come on its own (a UPD) and its deadline.
        The message is delivered once all its deliveries are.
        """
        with self.transaction() as connection:
            now = utcnow()
            _finish_attempt(
                connection, claim, now=now, outcome="delivered", error_class=None, error_text=None
            )
            message_id = connection.execute(
                FINISH_DELIVERY,
                {
                    "delivery_id": delivery_id,
                    "status": DeliveryStatus.DELIVERED.value,
                    "delivered_at": now,
                    "next_attempt_at": None,
                    "last_error": None,
                    "external_reference": external_reference,
                    "now": now,
                },
            ).scalar_one()
            for receipt in evidence:
                _insert_receipt(connection, message_id, delivery_id, receipt, now)
            if awaited is not None:
                connection.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.id == delivery_id)
                    .values(awaited_receipt=awaited.kind, receipt_due_at=awaited.due_at)
                )
            _refresh_message(connection, message_id, now)

    def dead_deliveries(
        self,
        endpoint: str | None = None,
        since: datetime | None = None,
        *,
        after: Cursor | None = None,
        limit: int = MAX_PAGE,
        office: str | None = None,
    ) -> list[DeadDelivery]:
        """Deliveries that exhausted their attempts or were refused for good, newest first.

        Args:
            endpoint: only this endpoint's.
            since: only those that died since then.
            after: the page after this row (a keyset cursor: when it died, its id).
            limit: at most this many.
            office: only those to the endpoints of this office.
        """
        query = select(*DEAD_DELIVERY_COLUMNS).where(
            DELIVERIES.c.status == DeliveryStatus.DEAD.value
        )
        if endpoint is not None:
            query = query.where(DELIVERIES.c.endpoint == endpoint)
        if office is not None:
            query = query.where(endpoint_of_office(DELIVERIES.c.endpoint, office))
        if since is not None:
            query = query.where(DELIVERIES.c.updated_at >= since)
        following = keyset_after(DELIVERIES.c.updated_at, DELIVERIES.c.id, after, newest_first=True)
        if following is not None:
            query = query.where(following)
        query = query.order_by(DELIVERIES.c.updated_at.desc(), DELIVERIES.c.id.desc()).limit(limit)
        with self.reading() as connection:
            rows = connection.execute(query).all()
        return [DeadDelivery(r[0], r[1], r[2], r[3], r[4], aware(r[5])) for r in rows]

    def replay_delivery(self, delivery_id: str, actor: str, reason: str) -> str | None:
        """Send a dead delivery again, under the same idempotency key; None if it is not dead.

        One transaction takes the delivery out of ``dead`` (so two operators cannot both
        replay it), records who replayed it and why, and queues its message for routing
        again through the outbox: the replay happens once, or not at all. The routing
        worker re-applies the route's steps (a fresh signature, say) and publishes the
        delivery, whose next attempt continues the numbering of the old ones.
        """
        with self.transaction() as connection:
            now = utcnow()
            message_id = connection.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == delivery_id,
                    DELIVERIES.c.status == DeliveryStatus.DEAD.value,
                )
                .values(
                    status=DeliveryStatus.PENDING.value,
                    next_attempt_at=None,
                    retry_since=now,
                    updated_at=now,
                )
                .returning(DELIVERIES.c.message_id)
            ).scalar_one_or_none()
            if message_id is None:
                return None
            connection.execute(
                SET_MESSAGE_STATUS,
                {
                    "message_id": message_id,
                    "status": MessageStatus.ROUTED.value,
                    "now": now,
                    "allowed_from": [status.value for status in predecessors(MessageStatus.ROUTED)],
                },
            )
            connection.execute(
                INSERT_OUTBOX,
                {"message_id": message_id, "routing_key": "accepted", "created_at": now},
            )
            audit_event(
                connection,
                message_id,
                "replayed",
                now,
                delivery_id=delivery_id,
                actor=actor,
                reason=reason,
            )
            return str(message_id)

    def late_receipts(
        self,
        now: datetime | None = None,
        *,
        after: Cursor | None = None,
        limit: int = MAX_PAGE,
        office: str | None = None,
    ) -> list[LateReceipt]:
        """Deliveries whose awaited receipt (e.g. a UPD) has not come by its deadline.

        Args:
            now: the moment the deadlines are held against (default: now).
            after: the page after this row (a keyset cursor: its deadline, its delivery id).
            limit: at most this many, the longest overdue first.
            office: only those to the endpoints of this office.
        """
        query = (
            select(
                DELIVERIES.c.message_id,
                DELIVERIES.c.id,
                DELIVERIES.c.endpoint,
                DELIVERIES.c.awaited_receipt,
                DELIVERIES.c.receipt_due_at,
                DELIVERIES.c.external_reference,
            )
            .where(late_receipt_condition(now or utcnow()))
            .order_by(DELIVERIES.c.receipt_due_at, DELIVERIES.c.id)
            .limit(limit)
        )
        if office is not None:
            query = query.where(endpoint_of_office(DELIVERIES.c.endpoint, office))
        following = keyset_after(
            DELIVERIES.c.receipt_due_at, DELIVERIES.c.id, after, newest_first=False
        )
        if following is not None:
            query = query.where(following)
        with self.reading() as connection:
            rows = connection.execute(query).all()
        return [LateReceipt(row[0], row[1], row[2], row[3], aware(row[4]), row[5]) for row in rows]

    def record_receipt(self, message_id: str, evidence: Evidence) -> bool:
        """Keep a receipt that arrived on its own (e.g. a UPD pulled from an inbox).

        A receipt with an ``external_id`` already kept for the message is not kept again.
        A receipt whose signature failed (``signature_valid`` False) is no evidence: it
        is quarantined (channel ``receipts``), adds no case event and leaves an awaited
        receipt late.

        Returns:
            Whether the receipt was new and kept as evidence.
        """
        try:
            return self._record_receipt(message_id, evidence)
        except sqlalchemy.exc.IntegrityError:
            return False  # another process kept the same receipt a moment ago

    def _record_receipt(self, message_id: str, evidence: Evidence) -> bool:
        with self.transaction() as connection:
            if evidence.external_id is not None and connection.scalar(
                select(RECEIPTS.c.id).where(
                    RECEIPTS.c.message_id == message_id,
                    RECEIPTS.c.external_id == evidence.external_id,
                )
            ):
                return False
            now = utcnow()
            if not _insert_receipt(connection, message_id, None, evidence, now):
                return False
            case_id = connection.scalar(SELECT_CASE_OF_MESSAGE, {"message_id": message_id})
            if case_id is not None and connection.scalar(SELECT_CASE, {"case_id": case_id}):
                add_case_event(
                    connection,
                    str(case_id),
                    f"receipt {evidence.kind}",
                    now,
                    envelope_id=message_id,
                )
            return True

    def fail_delivery(
        self,
        delivery_id: str,
        claim: Claim,
        error: Exception,
        *,
        give_up: bool,
        next_attempt_at: datetime | None,
    ) -> DeliveryStatus:
        """Record a failed attempt: the delivery is ``retrying``, or ``dead`` if ``give_up``."""
        status = DeliveryStatus.DEAD if give_up else DeliveryStatus.RETRYING
        error_text = str(error)[:4000]
        with self.transaction() as connection:
            now = utcnow()
            outcome = "dead" if give_up else "retry"
            _finish_attempt(
                connection,
                claim,
                now=now,
                outcome=outcome,
                error_class=type(error).__name__,
                error_text=error_text,
            )
            message_id = connection.execute(
                FINISH_DELIVERY,
                {
                    "delivery_id": delivery_id,
                    "status": status.value,
                    "delivered_at": None,
                    "next_attempt_at": next_attempt_at,
                    "last_error": f"{type(error).__name__}: {error_text}",
                    "external_reference": None,
                    "now": now,
                },
            ).scalar_one()
            _refresh_message(connection, message_id, now)
            return status

    # ---- single-instance jobs ------------------------------------------------------

    def acquire_singleton(self, name: str, holder: str, lease_s: float) -> bool:
        """Take or renew the lease ``name``; False if another live holder has it."""
        try:
            with self.transaction() as connection:
                now = utcnow()
                expires = now + timedelta(seconds=lease_s)
                renewed = connection.execute(
                    update(LOCKS)
                    .where(
                        LOCKS.c.name == name,
                        or_(LOCKS.c.holder == holder, LOCKS.c.expires_at < now),
                    )
                    .values(holder=holder, expires_at=expires)
                ).rowcount
                if renewed:
                    return True
                exists = connection.scalar(select(LOCKS.c.name).where(LOCKS.c.name == name))
                if exists is not None:
                    return False
                connection.execute(
                    insert(LOCKS).values(name=name, holder=holder, expires_at=expires)
                )
                return True
        except sqlalchemy.exc.IntegrityError:
            return False

    def release_singleton(self, name: str, holder: str) -> None:
        """Give the lease up so a successor need not wait for it to expire."""
        with self.transaction() as connection:
            connection.execute(delete(LOCKS).where(LOCKS.c.name == name, LOCKS.c.holder == holder))


def envelope_from_row(row: Row[Any]) -> Envelope:
    """Rebuild the envelope a ``messages`` row stores."""
    return Envelope(
        envelope_id=uuid.UUID(row.id),
        correlation_id=row.correlation_id,
        document_type=row.document_type,
        source=row.source,
        destination=Address.parse(row.destination),
        content_type=row.content_type,
        headers=json.loads(row.headers),
        body=row.body,
        created_at=aware(row.received_at),
    )


def aware(moment: datetime) -> datetime:
    """``moment`` with UTC attached if the database handed it back naive (SQLite does)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def late_receipt_condition(now: datetime) -> ColumnElement[bool]:
    """Deliveries awaiting a receipt whose deadline passed before ``now`` with none kept."""
    received = (
        select(RECEIPTS.c.id)
        .where(
            RECEIPTS.c.message_id == DELIVERIES.c.message_id,
            RECEIPTS.c.kind == DELIVERIES.c.awaited_receipt,
            # Kept before receipts that failed were quarantined: still no evidence.
            RECEIPTS.c.signature_valid.is_not(False),
        )
        .exists()
    )
    return and_(
        DELIVERIES.c.awaited_receipt.is_not(None),
        DELIVERIES.c.receipt_due_at < now,
        ~received,
    )


def _message_values(
    envelope: Envelope,
    *,
    status: MessageStatus,
    reason: str | None,
    external_id: str | None,
    submitted_at: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": str(envelope.envelope_id),
        "correlation_id": envelope.correlation_id,
        "external_id": external_id,
        "document_type": envelope.document_type,
        "source": envelope.source,
        "destination": str(envelope.destination),
        "content_type": envelope.content_type,
        "headers": json.dumps(dict(envelope.headers), ensure_ascii=False),
        "body": envelope.body,
        "body_sha256": envelope.body_sha256,
        "size_bytes": len(envelope.body),
        "status": status.value,
        "status_reason": reason,
        "submitted_at": submitted_at,
        "received_at": now,
        "updated_at": now,
        "delivered_at": None,
    }


def _delivery_values(
    ticket: DeliveryTicket, message_id: str, route: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": ticket.delivery_id,
        "message_id": message_id,
        "endpoint": ticket.endpoint,
        "route": route,
        "status": ticket.status.value,
        "attempts": 0,
        "created_at": now,
        "retry_since": now,
        "updated_at": now,
    }


# The Code of Administrative Procedure's default (art. 35 KPA): a case is settled within
# a month. A case opens with it (or with the days a sender names in the header); routing
# then counts it again from the catalogue service the filing was made under.
DEFAULT_CASE_DEADLINE_DAYS = 30
DEADLINE_HEADER = "statutory-deadline-days"
# Set on a document one office forwards to another: the office it came from.
FORWARDED_FROM = "forwarded-from"
# The headers in which inbound platforms name who filed a document, and their prefixes.
PARTY_HEADERS = (("epuap-reply-to", "epuap:"), ("edoreczenia-sender", "ade:"), ("party", ""))


def party_of(envelope: Envelope) -> str | None:
    """Who filed ``envelope``, as its platform named them (None if no platform said)."""
    for header_name, prefix in PARTY_HEADERS:
        value = envelope.headers.get(header_name)
        if value:
            return f"{prefix}{value}"[:200]
    return None


def statutory_deadline_days(envelope: Envelope) -> int:
    """The days the office has to settle the case this document opens."""
    try:
        return int(envelope.headers.get(DEADLINE_HEADER, DEFAULT_CASE_DEADLINE_DAYS))
    except ValueError:
        return DEFAULT_CASE_DEADLINE_DAYS


def _set_case_deadline(connection: Connection, message_id: str, days: int) -> None:
    case = connection.execute(
        select(CASES.c.id, CASES.c.opened_at)
        .join(MESSAGES, MESSAGES.c.correlation_id == CASES.c.id)
        .where(MESSAGES.c.id == message_id)
    ).first()
    if case is not None:
        connection.execute(
            update(CASES)
            .where(CASES.c.id == case.id)
            .values(deadline_at=case.opened_at + timedelta(days=days))
        )


def _claim_case_of(connection: Connection, case_id: str, office: str, now: datetime) -> None:
    """Check that ``case_id`` is ``office``'s, locking its row for this transaction.

    An update rather than a read: it takes the row's write lock, so a concurrent
    forwarding of the same case waits for this transaction instead of racing it.
    """
    owned = connection.execute(
        update(CASES).where(CASES.c.id == case_id, CASES.c.office == office).values(updated_at=now)
    ).rowcount
    if not owned:
        raise CaseNotFound(f"no case {case_id} for office {office}")


def _open_case(connection: Connection, envelope: Envelope, now: datetime) -> None:
    known = connection.scalar(SELECT_CASE, {"case_id": envelope.correlation_id})
    forwarded_from = envelope.headers.get(FORWARDED_FROM)
    if known is not None and forwarded_from:
        # Office to office: the case moves with the document to the office taking it over.
        office = envelope.destination.office
        connection.execute(
            update(CASES)
            .where(CASES.c.id == envelope.correlation_id)
            .values(office=office, status="forwarded", updated_at=now)
        )
        add_case_event(
            connection,
            envelope.correlation_id,
            "forwarded",
            now,
            envelope_id=str(envelope.envelope_id),
            **{"from": forwarded_from, "to": office},
        )
        return
    if known is None:
        connection.execute(
            INSERT_CASE,
            {
                "id": envelope.correlation_id,
                "office": envelope.destination.office,
                "party": party_of(envelope),
                "status": "received",
                "opened_at": now,
                "updated_at": now,
                "deadline_at": now + timedelta(days=statutory_deadline_days(envelope)),
            },
        )
    add_case_event(
        connection, envelope.correlation_id, "received", now, envelope_id=str(envelope.envelope_id)
    )


RECEIPTS_QUARANTINE_CHANNEL = "receipts"


def _insert_receipt(
    connection: Connection,
    message_id: str,
    delivery_id: str | None,
    evidence: Evidence,
    now: datetime,
) -> bool:
    """Keep ``evidence`` as a receipt of the message; return whether it was kept so.

    Evidence is only what verified: a receipt whose signature failed goes to the
    quarantine instead, with the reason, in the same transaction.
    """
    if evidence.signature_valid is False:
        _quarantine_receipt(connection, message_id, evidence, now)
        return False
    connection.execute(
        INSERT_RECEIPT,
        {
            "message_id": message_id,
            "delivery_id": delivery_id,
            "kind": evidence.kind,
            "external_id": evidence.external_id,
            "document": evidence.document,
            "signature_valid": evidence.signature_valid,
            "received_at": now,
        },
    )
    audit_event(
        connection,
        message_id,
        "receipt",
        now,
        kind=evidence.kind,
        external_id=evidence.external_id,
        signature_valid=evidence.signature_valid,
    )
    return True


def _quarantine_receipt(
    connection: Connection, message_id: str, evidence: Evidence, now: datetime
) -> None:
    # Written here rather than through hub.store.quarantine (which builds on this
    # module): the refusal must commit with the delivery's outcome, in one transaction.
    reason = f"{evidence.kind} {evidence.external_id or ''} of message {message_id}: " + (
        evidence.detail or "its signature does not verify"
    )
    connection.execute(
        insert(QUARANTINE).values(
            channel=RECEIPTS_QUARANTINE_CHANNEL,
            code="receipt-signature-invalid",
            reason=reason,
            remote_address=None,
            content_type="application/xml",
            size=len(evidence.document),
            sha256=hashlib.sha256(evidence.document).hexdigest(),
            body=evidence.document,
            truncated=False,
            received_at=now,
        )
    )
    audit_event(
        connection,
        message_id,
        "receipt-quarantined",
        now,
        kind=evidence.kind,
        external_id=evidence.external_id,
        reason=evidence.detail,
    )


def _insert_signature_check(
    connection: Connection, message_id: str, check: SignatureCheck, now: datetime
) -> None:
    connection.execute(
        insert(SIGNATURE_CHECKS).values(
            message_id=message_id,
            valid=check.valid,
            method=check.method,
            signer=check.signer,
            signed_at=check.signed_at,
            certificate_serial=check.certificate_serial,
            reason=check.reason,
            position=check.position,
            form=check.form,
            covers_document=check.covers_document,
            checked_at=now,
        )
    )
    audit_event(
        connection,
        message_id,
        "signature-checked",
        now,
        position=check.position,
        valid=check.valid,
        reason=check.reason,
    )


def audit_event(
    connection: Connection, message_id: str | None, event: str, now: datetime, **details: object
) -> None:
    """Append an audit row (chained later by :mod:`hub.audit`) in the change's transaction.

    ``message_id`` is None for what concerns no one message (an endpoint paused, say).
    """
    connection.execute(
        INSERT_AUDIT,
        {
            "message_id": message_id,
            "event": event,
            "actor": _actor(),
            "details": json.dumps(details, sort_keys=True, ensure_ascii=False, default=str),
            "occurred_at": now,
            "chain_seq": None,
            "previous_hash": None,
            "row_hash": None,
        },
    )


def _actor() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def add_case_event(
    connection: Connection, case_id: str, event: str, now: datetime, **details: str
) -> None:
    """Append a step to a case's history, in the transaction of what caused it."""
    connection.execute(
        INSERT_CASE_EVENT,
        {"case_id": case_id, "event": event, "details": json.dumps(details), "occurred_at": now},
    )


def _external_id_known(connection: Connection, external_id: str) -> bool:
    return connection.scalar(SELECT_BY_EXTERNAL_ID, {"external_id": external_id}) is not None


def _why_not_claimed(connection: Connection, delivery_id: str, now: datetime) -> Claim:
    row = connection.execute(
        select(DELIVERIES.c.status, DELIVERIES.c.lease_until).where(DELIVERIES.c.id == delivery_id)
    ).first()
    if row is None:
        return Claim(ClaimResult.UNKNOWN)
    if DeliveryStatus(row.status) in FINAL_DELIVERY_STATUSES:
        return Claim(ClaimResult.ALREADY_FINAL)
    lease_until = aware(row.lease_until) if row.lease_until else now
    return Claim(ClaimResult.HELD_ELSEWHERE, lease_left_s=(lease_until - now).total_seconds())


def _finish_attempt(
    connection: Connection,
    claim: Claim,
    *,
    now: datetime,
    outcome: str,
    error_class: str | None,
    error_text: str | None,
) -> None:
    duration_ms = (now - claim.started_at).total_seconds() * 1000 if claim.started_at else None
    connection.execute(
        FINISH_ATTEMPT,
        {
            "attempt_id": claim.attempt_id,
            "now": now,
            "outcome": outcome,
            "error_class": error_class,
            "error_text": error_text,
            "duration_ms": duration_ms,
        },
    )


def _refresh_message(connection: Connection, message_id: str, now: datetime) -> None:
    """Set the message's status from its deliveries', as the state machine allows.

    The message row is locked first: two deliveries of one message finishing at once
    (their own transactions, in two threads) would each read the other as unfinished and
    leave the message short of delivered. Locked, the second reads after the first commits.
    (SQLite has one writer at a time anyway; FOR UPDATE is left out there.)
    """
    connection.execute(select(MESSAGES.c.id).where(MESSAGES.c.id == message_id).with_for_update())
    statuses = {
        DeliveryStatus(status)
        for status in connection.scalars(SELECT_DELIVERY_STATUSES, {"message_id": message_id})
    }
    status = _message_status_from(statuses)
    statement = MARK_DELIVERED if status is MessageStatus.DELIVERED else SET_MESSAGE_STATUS
    allowed_from = [allowed.value for allowed in predecessors(status)]
    changed = connection.execute(
        statement,
        {
            "message_id": message_id,
            "status": status.value,
            "now": now,
            "allowed_from": allowed_from,
        },
    ).rowcount
    if not changed:
        current = connection.scalar(SELECT_MESSAGE_STATUS, {"message_id": message_id})
        raise IllegalTransition(f"message {message_id} cannot go from {current} to {status}")
    audit_event(connection, message_id, status.value, now)
    if status is MessageStatus.DELIVERED:
        case_id = connection.scalar(SELECT_CASE_OF_MESSAGE, {"message_id": message_id})
        add_case_event(connection, str(case_id), "delivered", now, envelope_id=message_id)


def _message_status_from(statuses: set[DeliveryStatus]) -> MessageStatus:
    if statuses and statuses == {DeliveryStatus.DELIVERED}:
        return MessageStatus.DELIVERED
    if DeliveryStatus.DEAD in statuses:
        return MessageStatus.DEAD
    if DeliveryStatus.RETRYING in statuses:
        return MessageStatus.RETRYING
    if statuses & {DeliveryStatus.DELIVERING, DeliveryStatus.DELIVERED}:
        # Under way: one delivery being tried, or some done and others still pending.
        return MessageStatus.DELIVERING
    return MessageStatus.ROUTED
