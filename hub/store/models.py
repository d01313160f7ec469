"""The store's tables: messages, deliveries, attempts, receipts, cases, audit and outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite has no BIGINT autoincrement; INTEGER PRIMARY KEY is its rowid.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

UUID_LENGTH = 36


class Base(DeclarativeBase):
    """Declarative base with the hub's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MessageRow(Base):
    """One document the hub received: the envelope, its body and its overall status."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    correlation_id: Mapped[str] = mapped_column(String(100), index=True)
    external_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    document_type: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(100))
    destination: Mapped[str] = mapped_column(String(100), index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    headers: Mapped[str] = mapped_column(Text, default="{}")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryRow(Base):
    """One message's way to one destination endpoint; the database owns its counters."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint", name="uq_deliveries_message_endpoint"),
    )

    id: Mapped[str] = mapped_column(String(UUID_LENGTH), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(100), index=True)
    route: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    external_reference: Mapped[str | None] = mapped_column(String(300), index=True)
    # A receipt the destination still owes (e.g. ePUAP's UPD), and by when it is due.
    awaited_receipt: Mapped[str | None] = mapped_column(String(40))
    receipt_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Where the retry window starts: the delivery's creation, or its latest replay.
    retry_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AttemptRow(Base):
    """One try of one delivery: when, how long, and how it ended."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))
    error_class: Mapped[str | None] = mapped_column(String(200))
    error_text: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None]


class ReceiptRow(Base):
    """Evidence from the other side: UPP, UPO, UPD, e-Doręczenia evidences, acknowledgements."""

    __tablename__ = "receipts"
    # One receipt per id per message, however many notifications announce it.
    __table_args__ = (
        UniqueConstraint("message_id", "external_id", name="uq_receipts_message_external"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    delivery_id: Mapped[str | None] = mapped_column(ForeignKey("deliveries.id"))
    kind: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(300))
    document: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature_valid: Mapped[bool | None] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignatureCheckRow(Base):
    """What verifying a received document's signature found: who signed, when, valid or why not."""

    __tablename__ = "signature_checks"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    valid: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(40))
    signer: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    certificate_serial: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Which of the document's signatures (1 = first in document order), how it is built
    # (enveloped, enveloping, nested) and whether it covers the whole document.
    position: Mapped[int] = mapped_column(Integer, server_default="1")
    form: Mapped[str | None] = mapped_column(String(20))
    covers_document: Mapped[bool | None] = mapped_column(Boolean)


class CaseRow(Base):
    """A citizen's case as the portal sees it; its id is the correlation id."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    office: Mapped[str] = mapped_column(String(20), index=True)
    # Who filed it, as the platform named them (e.g. ``epuap:/jan-kowalski/skrytka``):
    # the portal shows a case to its own party only.
    party: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseEventRow(Base):
    """One step in a case's history, reported by a domain system or the hub."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text, default="{}")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """Hash-chained record of state changes: each row holds the SHA-256 of the previous one.

    Rows are written in the transaction of the change they record; the chain position
    (``chain_seq``) and hashes are added shortly after by the single chainer, so no
    writer has to wait for the chain's head.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    message_id: Mapped[str | None] = mapped_column(String(UUID_LENGTH), index=True)
    event: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text, default="{}")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """The chain's head at one moment, XAdES-signed with the hub's key."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    row_hash: Mapped[str] = mapped_column(String(64))
    signed_document: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """A message to publish, written in the same transaction as the state that needs it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    routing_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EndpointStateRow(Base):
    """An endpoint's circuit: closed (deliver), open (failing: wait), paused (by an operator)."""

    __tablename__ = "endpoint_states"

    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    reopen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SingletonLockRow(Base):
    """A lease that lets exactly one relay or poller run against this database."""

    __tablename__ = "singleton_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuarantineRow(Base):
    """An inbound request refused before it could become a message, kept with its reason.

    Malformed SOAP, a wrong token, an unknown mailbox, a body too large or not what its
    content type says: the caller got a specific error, and the regional IT centre can
    see what arrived, when, from where and why it was refused. Bodies are kept up to a
    limit (``truncated`` says when only the start was kept); the digest is of the whole.
    """

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(60), index=True)
    code: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    remote_address: Mapped[str | None] = mapped_column(String(100))
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    truncated: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AlertRow(Base):
    """One alert from its start to its end, so an ongoing alert is told once, not every cycle."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "rule", "subject", "resolved_at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set once the condition has held long enough (e.g. a circuit open for N minutes).
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClientRow(Base):
    """One caller of the hub's inbound APIs: whom it acts for, what it may speak as and call.

    Only the SHA-256 of its secret is kept. During a rotation the previous secret stays
    valid until ``previous_valid_until``; a revoked client is kept (``revoked_at``) so the
    audit chain's entries about it still name a row.
    """

    __tablename__ = "clients"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # An office id of the catalogue, "portal" or "region" (the regional IT centre).
    acts_for: Mapped[str] = mapped_column(String(40))
    sources: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    apis: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    # The monitoring API's role (viewer, operator, admin) for clients that call it.
    role: Mapped[str | None] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    previous_secret_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # SHA-256 of the DER of a client certificate that identifies this client over mTLS.
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DashboardSessionRow(Base):
    """One login to the dashboard, so logging out ends it on the server, not only in the browser.

    The cookie carries a random session id; only its SHA-256 is kept, so a copy of this
    table opens no session.
    """

    __tablename__ = "dashboard_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The absolute end (the idle timeout is counted from last_seen_at).
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginThrottleRow(Base):
    """Failed logins of one account or one address, and until when further tries are refused.

    Kept in the store, not in a process: the dashboard runs as several gunicorn workers,
    and a guesser would otherwise get each worker's allowance.
    """

    __tablename__ = "login_throttle"

    # "account:<name>" or "address:<IP address>".
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MonitoringCounterRow(Base):
    """A count that only grows (e.g. refused logins), exposed as a Prometheus counter."""

    __tablename__ = "monitoring_counters"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
