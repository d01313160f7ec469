"""The store's tables as SQLAlchemy Core ``Table`` objects, named once for every module.

Writes and the read side's queries go through Core on prebuilt statements: the ORM's
statement building costs milliseconds of CPU per call, which on the hot path would cap
the hub well below the database.
"""

from __future__ import annotations

from sqlalchemy import Table

from hub.store.models import (
    AlertRow,
    AttemptRow,
    AuditCheckpointRow,
    AuditRow,
    CaseEventRow,
    CaseRow,
    ClientRow,
    DashboardSessionRow,
    DeliveryRow,
    EndpointStateRow,
    LoginThrottleRow,
    MessageRow,
    MonitoringCounterRow,
    OutboxRow,
    QuarantineRow,
    ReceiptRow,
    SignatureCheckRow,
    SingletonLockRow,
)

ALERTS: Table = AlertRow.__table__  # type: ignore[assignment]
ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[assignment]
AUDIT: Table = AuditRow.__table__  # type: ignore[assignment]
CASES: Table = CaseRow.__table__  # type: ignore[assignment]
CLIENTS: Table = ClientRow.__table__  # type: ignore[assignment]
CASE_EVENTS: Table = CaseEventRow.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = AuditCheckpointRow.__table__  # type: ignore[assignment]
DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[assignment]
ENDPOINT_STATES: Table = EndpointStateRow.__table__  # type: ignore[assignment]
LOCKS: Table = SingletonLockRow.__table__  # type: ignore[assignment]
MESSAGES: Table = MessageRow.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxRow.__table__  # type: ignore[assignment]
QUARANTINE: Table = QuarantineRow.__table__  # type: ignore[assignment]
RECEIPTS: Table = ReceiptRow.__table__  # type: ignore[assignment]
SIGNATURE_CHECKS: Table = SignatureCheckRow.__table__  # type: ignore[assignment]
DASHBOARD_SESSIONS: Table = DashboardSessionRow.__table__  # type: ignore[assignment]
LOGIN_THROTTLE: Table = LoginThrottleRow.__table__  # type: ignore[assignment]
MONITORING_COUNTERS: Table = MonitoringCounterRow.__table__  # type: ignore[assignment]
