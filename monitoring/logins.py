"""Login state kept in the store: sessions that logout ends, throttled failures, counters.

All three live in the database rather than in process memory because the dashboard is
served by several gunicorn workers (and may be by several hosts): a session revoked in
one worker must be refused by every other, and a guesser must not get a fresh allowance
of failures from each worker.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hub.settings import Settings
from hub.store.repository import Store, aware, utcnow
from hub.store.tables import DASHBOARD_SESSIONS, LOGIN_THROTTLE, MONITORING_COUNTERS

# A session's last_seen_at is written at most this often: the idle timeout is minutes,
# and a write per page view would queue every dashboard reader behind SQLite's one writer.
TOUCH_EVERY = timedelta(seconds=60)
LOGIN_FAILED = "login_failed"
LOGIN_THROTTLED = "login_throttled"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _insert_for(connection: Connection) -> Any:
    # Both databases upsert with INSERT ... ON CONFLICT; SQLAlchemy spells it per dialect.
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


class DashboardSessions:
    """Sessions of people logged in to the dashboard, each ended by logout or by time."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._lifetime = timedelta(seconds=settings.dashboard_session_lifetime_s)
        self._idle = timedelta(seconds=settings.dashboard_session_idle_s)

    def open(self, account: str, now: datetime | None = None) -> str:
        """Start a session for ``account``; return its id (kept only as a digest)."""
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        with self._store.transaction() as connection:
            # Ended sessions are of no use to anyone; each login sweeps them away.
            connection.execute(
                delete(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.expires_at < now)
            )
            connection.execute(
                insert(DASHBOARD_SESSIONS).values(
                    id_sha256=_digest(token),
                    account=account,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self._lifetime,
                    revoked_at=None,
                )
            )
        return token

    def account_of(self, token: str, now: datetime | None = None) -> str | None:
        """The account of a live session, or None if it was revoked, expired or idle too long."""
        now = now or utcnow()
        digest = _digest(token)
        with self._store.reading() as connection:
            row = connection.execute(
                select(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.id_sha256 == digest)
            ).first()
        if row is None or row.revoked_at is not None or now >= aware(row.expires_at):
            return None
        last_seen = aware(row.last_seen_at)
        if now - last_seen >= self._idle:
            return None
        if now - last_seen >= TOUCH_EVERY:
            with self._store.transaction() as connection:
                connection.execute(
                    update(DASHBOARD_SESSIONS)
                    .where(DASHBOARD_SESSIONS.c.id_sha256 == digest)
                    .values(last_seen_at=now)
                )
        return str(row.account)

    def revoke(self, token: str, now: datetime | None = None) -> None:
        """End a session: its cookie, even a copy of it, opens nothing any more."""
        with self._store.transaction() as connection:
            connection.execute(
                update(DASHBOARD_SESSIONS)
                .where(DASHBOARD_SESSIONS.c.id_sha256 == _digest(token))
                .values(revoked_at=now or utcnow())
            )


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    """Failed logins per account and per address, and the growing wait they earn."""

    store: Store
    settings: Settings

    def wait_s(self, keys: list[str], now: datetime | None = None) -> float:
        """How long the caller must wait before trying to log in again (0: may try now)."""
        now = now or utcnow()
        with self.store.reading() as connection:
            blocks = connection.scalars(
                select(LOGIN_THROTTLE.c.blocked_until).where(
                    LOGIN_THROTTLE.c.key.in_(keys), LOGIN_THROTTLE.c.blocked_until > now
                )
            ).all()
        return max(((aware(until) - now).total_seconds() for until in blocks), default=0.0)

    def record_failure(self, keys: list[str], now: datetime | None = None) -> None:
        """Count one failed login against each key; past the allowance, block it for a while."""
        now = now or utcnow()
        forget_before = now - timedelta(seconds=self.settings.dashboard_login_backoff_max_s)
        with self.store.transaction() as connection:
            connection.execute(
                delete(LOGIN_THROTTLE).where(
                    LOGIN_THROTTLE.c.last_failure_at < forget_before,
                    (LOGIN_THROTTLE.c.blocked_until.is_(None))
                    | (LOGIN_THROTTLE.c.blocked_until < now),
                )
            )
            for key in keys:
                failures = self._count(connection, key, now, forget_before)
                if failures >= self.settings.dashboard_login_failures_allowed:
                    connection.execute(
                        update(LOGIN_THROTTLE)
                        .where(LOGIN_THROTTLE.c.key == key)
                        .values(blocked_until=now + timedelta(seconds=self.backoff_s(failures)))
                    )
            increment(connection, LOGIN_FAILED)

    def clear(self, key: str) -> None:
        """Forget an account's failures once its password was given right."""
        with self.store.transaction() as connection:
            connection.execute(delete(LOGIN_THROTTLE).where(LOGIN_THROTTLE.c.key == key))

    def record_throttled(self) -> None:
        """Count a login refused because its account or address was waiting out a backoff."""
        with self.store.transaction() as connection:
            increment(connection, LOGIN_THROTTLED)

    def backoff_s(self, failures: int) -> float:
        """The wait earned by ``failures`` failures: doubling from the first over the allowance."""
        beyond = failures - self.settings.dashboard_login_failures_allowed
        wait_s = self.settings.dashboard_login_backoff_s * 2 ** min(beyond, 30)
        return float(min(wait_s, self.settings.dashboard_login_backoff_max_s))

    def _count(
        self, connection: Connection, key: str, now: datetime, forget_before: datetime
    ) -> int:
        statement = _insert_for(connection)(LOGIN_THROTTLE).values(
            key=key, failures=1, last_failure_at=now, blocked_until=None
        )
        statement = statement.on_conflict_do_update(
            index_elements=[LOGIN_THROTTLE.c.key],
            set_={
                # One atomic update, so two workers counting at once both count.
                "failures": case(
                    (LOGIN_THROTTLE.c.last_failure_at < forget_before, 1),
                    else_=LOGIN_THROTTLE.c.failures + 1,
                ),
                "last_failure_at": now,
            },
        ).returning(LOGIN_THROTTLE.c.failures)
        return int(connection.execute(statement).scalar_one())


def increment(connection: Connection, name: str) -> None:
    """Add one to the counter ``name`` in the caller's transaction."""
    statement = _insert_for(connection)(MONITORING_COUNTERS).values(name=name, value=1)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[MONITORING_COUNTERS.c.name],
            set_={"value": MONITORING_COUNTERS.c.value + 1},
        )
    )


def counters(store: Store) -> dict[str, int]:
    """Every monitoring counter's value."""
    with store.reading() as connection:
        rows = connection.execute(
            select(MONITORING_COUNTERS.c.name, MONITORING_COUNTERS.c.value)
        ).all()
    return {str(name): int(value) for name, value in rows}
