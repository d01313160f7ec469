"""A circuit breaker per endpoint: a failing system is left alone, and no attempts are burnt.

After ``breaker_failure_threshold`` transient failures in a row the endpoint's circuit
opens: its deliveries wait in the delay queues without being attempted, so they keep
their attempt budget. Once ``breaker_cool_down_s`` has passed one delivery goes through
as a probe; success closes the circuit, failure opens it again. Operators can pause an
endpoint (a planned maintenance window) and resume it. The state lives in the store, so
every worker process sees the same circuit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from hub.settings import Settings
from hub.store.models import EndpointStateRow
from hub.store.repository import Store, audit_event, aware, utcnow
from hub.store.tables import ENDPOINT_STATES

PAUSED_RECHECK_S = 60.0
CLEAN_CACHE_S = 1.0


class Circuit(StrEnum):
    """Whether deliveries to an endpoint are attempted."""

    CLOSED = "closed"
    OPEN = "open"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Gate:
    """The breaker's answer for one delivery: go, or wait ``wait_s`` and ask again."""

    allowed: bool
    wait_s: float = 0.0
    circuit: Circuit = Circuit.CLOSED
    failures: int = 0


class CircuitBreakers:
    """The circuits of every endpoint, read and written through the store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._threshold = settings.breaker_failure_threshold
        self._cool_down = timedelta(seconds=settings.breaker_cool_down_s)
        # A clean closed circuit is remembered briefly, so a healthy endpoint costs no
        # database read per delivery; another process opening it is seen within a second.
        self._clean_until: dict[str, float] = {}

    def gate(self, endpoint: str) -> Gate:
        """May a delivery to ``endpoint`` be attempted now? An open circuit lets one probe by."""
        if self._clean_until.get(endpoint, 0.0) > time.monotonic():
            return Gate(True)
        with self._store.reading() as connection:
            row = _row(connection, endpoint)
        if row is None or row.state == Circuit.CLOSED:
            failures = row.consecutive_failures if row else 0
            if failures == 0:
                self._clean_until[endpoint] = time.monotonic() + CLEAN_CACHE_S
            return Gate(True, failures=failures)
        if row.state == Circuit.PAUSED:
            return Gate(False, PAUSED_RECHECK_S, Circuit.PAUSED)
        return self._probe_or_wait(endpoint)

    def succeeded(self, endpoint: str, gate: Gate) -> None:
        """Close the circuit after a success (written only if it was not clean already)."""
        if gate.circuit is Circuit.CLOSED and gate.failures == 0:
            return
        with self._store.transaction() as connection:
            _upsert(
                connection, endpoint, state=Circuit.CLOSED, consecutive_failures=0, reopen_at=None
            )

    def failed(self, endpoint: str, reason: str) -> None:
        """Count a transient failure; open the circuit once there are too many in a row."""
        self._clean_until.pop(endpoint, None)
        with self._store.transaction() as connection:
            row = _row(connection, endpoint)
            if row is not None and row.state == Circuit.PAUSED:
                return
            failures = (row.consecutive_failures if row else 0) + 1
            opened = failures >= self._threshold
            _upsert(
                connection,
                endpoint,
                state=Circuit.OPEN if opened else Circuit.CLOSED,
                consecutive_failures=failures,
                reopen_at=utcnow() + self._cool_down if opened else None,
                reason=reason,
            )

    def pause(self, endpoint: str, actor: str, reason: str, **details: str) -> None:
        """Stop attempting deliveries to ``endpoint`` until :meth:`resume`.

        The audit log records who paused it and why, in the same transaction; ``details``
        add to that record (the operator's role, say).
        """
        self._clean_until.pop(endpoint, None)
        with self._store.transaction() as connection:
            _upsert(connection, endpoint, state=Circuit.PAUSED, reason=reason, changed_by=actor)
            audit_event(
                connection,
                None,
                "endpoint-paused",
                utcnow(),
                endpoint=endpoint,
                actor=actor,
                reason=reason,
                **details,
            )

    def resume(self, endpoint: str, actor: str, **details: str) -> None:
        """Attempt deliveries to ``endpoint`` again; the audit log records who."""
        with self._store.transaction() as connection:
            audit_event(
                connection,
                None,
                "endpoint-resumed",
                utcnow(),
                endpoint=endpoint,
                actor=actor,
                **details,
            )
            _upsert(
                connection,
                endpoint,
                state=Circuit.CLOSED,
                consecutive_failures=0,
                reopen_at=None,
                reason=None,
                changed_by=actor,
            )

    def states(self) -> list[EndpointStateRow]:
        """Every endpoint whose circuit was ever touched."""
        with self._store.session() as session:
            return list(
                session.scalars(select(EndpointStateRow).order_by(EndpointStateRow.endpoint))
            )

    def _probe_or_wait(self, endpoint: str) -> Gate:
        with self._store.transaction() as connection:
            row = _row(connection, endpoint)
            # Another worker may have closed or paused it since the read in gate().
            if row is None or row.state == Circuit.CLOSED:
                return Gate(True)
            if row.state == Circuit.PAUSED:
                return Gate(False, PAUSED_RECHECK_S, Circuit.PAUSED)
            now = utcnow()
            reopen_at = aware(row.reopen_at) if row.reopen_at else now
            if reopen_at > now:
                return Gate(
                    False, (reopen_at - now).total_seconds(), Circuit.OPEN, row.consecutive_failures
                )
            # This delivery is the probe; the others keep waiting one more cool-down.
            _upsert(connection, endpoint, reopen_at=now + self._cool_down)
            return Gate(True, circuit=Circuit.OPEN, failures=row.consecutive_failures)


def _row(connection: Connection, endpoint: str) -> EndpointStateRow | None:
    return connection.execute(
        select(ENDPOINT_STATES).where(ENDPOINT_STATES.c.endpoint == endpoint)
    ).first()  # type: ignore[return-value]


def _upsert(connection: Connection, endpoint: str, **values: object) -> None:
    values["updated_at"] = utcnow()
    changed = connection.execute(
        update(ENDPOINT_STATES).where(ENDPOINT_STATES.c.endpoint == endpoint).values(**values)
    ).rowcount
    if not changed:
        defaults: dict[str, object] = {"state": Circuit.CLOSED.value, "consecutive_failures": 0}
        connection.execute(
            insert(ENDPOINT_STATES).values(endpoint=endpoint, **{**defaults, **values})
        )
