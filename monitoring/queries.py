"""The dashboard's read side: figures over a window, per office and endpoint, and traces.

Queries read through :meth:`Store.reading` (read-only, so on SQLite they leave the write
lock to the workers) and return plain dataclasses the views and the JSON API share.
Percentiles are computed here rather than in SQL: SQLite has no percentile function,
and one window's latencies are few enough to sort. Every query takes the account's
:class:`~monitoring.scope.Scope` and adds its condition in SQL.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.engine import Connection

from hub.envelope import Address
from hub.states import FINAL_DELIVERY_STATUSES, DeliveryStatus, MessageStatus
from hub.store.pages import Cursor, Page, escape_like, keyset_after, page_of
from hub.store.repository import DEAD_DELIVERY_COLUMNS, Store, aware, utcnow
from hub.store.tables import (
    ATTEMPTS,
    AUDIT,
    CASE_EVENTS,
    DELIVERIES,
    ENDPOINT_STATES,
    MESSAGES,
    RECEIPTS,
    SIGNATURE_CHECKS,
)
from monitoring.scope import Scope

WINDOWS = {"15m": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
# One chart point per 15 s over the live quarter hour, per minute over an hour, per half
# hour over a day.
BUCKETS = {"15m": timedelta(seconds=15), "hour": timedelta(minutes=1), "day": timedelta(minutes=30)}
WAITING_STATUSES = [
    status.value for status in DeliveryStatus if status not in FINAL_DELIVERY_STATUSES
]
FAILED_OUTCOMES = ("retry", "dead", "abandoned")
OPERATOR_EVENTS = ("replayed", "endpoint-paused", "endpoint-resumed")
SEARCH_LIMIT = 50
REGION = Scope()
# The header in which e-Doręczenia's own message id travels: an id a viewer may search by.
EDORECZENIA_MESSAGE_ID = "edoreczenia-message-id"
# How many audit rows an office's list of actions looks through for its own.
ACTIONS_SCANNED = 5000


@dataclass(frozen=True, slots=True)
class Overview:
    """What went through the hub in one window, and what stands now."""

    window: str
    since: datetime
    received: int
    delivered: int
    rejected: int
    dead: int
    retrying_now: int
    dead_now: int
    waiting_now: int


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of the throughput and latency charts."""

    at: datetime
    received: int
    delivered: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(slots=True)
class EndpointFigures:
    """One endpoint's backlog, errors and health."""

    endpoint: str
    office: str
    backlog: int = 0
    oldest_waiting_at: datetime | None = None
    delivered: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    dead_now: int = 0
    circuit: str = "closed"
    circuit_reason: str | None = None
    circuit_since: datetime | None = None
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None

    @property
    def error_rate(self) -> float:
        """Failed attempts over all attempts in the window (0 with no attempts)."""
        return self.failed_attempts / self.attempts if self.attempts else 0.0


@dataclass(slots=True)
class OfficeFigures:
    """One office's traffic and backlog, summed over its endpoints."""

    office: str
    name: str = ""
    received: int = 0
    delivered: int = 0
    backlog: int = 0
    oldest_waiting_at: datetime | None = None
    attempts: int = 0
    failed_attempts: int = 0
    dead_now: int = 0

    @property
    def error_rate(self) -> float:
        """Failed attempts over all attempts in the window (0 with no attempts)."""
        return self.failed_attempts / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class FoundMessage:
    """A message matching a trace search."""

    envelope_id: str
    correlation_id: str
    external_id: str | None
    source: str
    destination: str
    status: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Hop:
    """One step on a message's journey, with the time since the step before."""

    at: datetime
    what: str
    detail: str = ""
    since_previous_ms: float | None = None


@dataclass
class Trace:
    """Everything the store knows about one message."""

    message: dict[str, Any]
    headers: dict[str, str]
    body: bytes
    deliveries: list[dict[str, Any]]
    receipts: list[dict[str, Any]]
    signature_checks: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    case_events: list[dict[str, Any]]
    same_case: list[FoundMessage]
    hops: list[Hop] = field(default_factory=list)


def window_start(window: str, now: datetime | None = None) -> datetime:
    """When ``window`` (15m, hour or day) began."""
    return (now or utcnow()) - WINDOWS[window]


def overview(store: Store, window: str, scope: Scope = REGION) -> Overview:
    """Documents in and out over ``window``, and the retrying, dead and waiting now."""
    since = window_start(window)
    messages, deliveries = scope.messages(), scope.deliveries()
    with store.reading() as connection:
        received = _count(connection, MESSAGES, messages, MESSAGES.c.received_at >= since)
        delivered = _count(connection, MESSAGES, messages, MESSAGES.c.delivered_at >= since)
        rejected = _count(
            connection,
            MESSAGES,
            messages,
            MESSAGES.c.status == MessageStatus.REJECTED.value,
            MESSAGES.c.received_at >= since,
        )
        dead = _count(connection, DELIVERIES, deliveries, _dead(), DELIVERIES.c.updated_at >= since)
        retrying_now = _count(
            connection,
            DELIVERIES,
            deliveries,
            DELIVERIES.c.status == DeliveryStatus.RETRYING.value,
        )
        dead_now = _count(connection, DELIVERIES, deliveries, _dead())
        waiting_now = _count(
            connection, DELIVERIES, deliveries, DELIVERIES.c.status.in_(WAITING_STATUSES)
        )
    return Overview(
        window, since, received, delivered, rejected, dead, retrying_now, dead_now, waiting_now
    )


def series(
    store: Store, window: str, now: datetime | None = None, scope: Scope = REGION
) -> list[SeriesPoint]:
    """Throughput and end-to-end latency (received → delivered) per bucket of ``window``."""
    now = now or utcnow()
    since, step = window_start(window, now), BUCKETS[window]
    with store.reading() as connection:
        arrivals = connection.scalars(
            select(MESSAGES.c.received_at).where(MESSAGES.c.received_at >= since, scope.messages())
        ).all()
        deliveries = connection.execute(
            select(DELIVERIES.c.delivered_at, MESSAGES.c.received_at)
            .join(MESSAGES, MESSAGES.c.id == DELIVERIES.c.message_id)
            .where(DELIVERIES.c.delivered_at >= since, scope.deliveries())
        ).all()
    buckets = int((now - since) / step) + 1
    received = [0] * buckets
    latencies: list[list[float]] = [[] for _ in range(buckets)]
    for moment in arrivals:
        received[_bucket(aware(moment), since, step, buckets)] += 1
    for delivered_at, received_at in deliveries:
        index = _bucket(aware(delivered_at), since, step, buckets)
        latencies[index].append((aware(delivered_at) - aware(received_at)).total_seconds() * 1000)
    return [
        SeriesPoint(
            since + step * index,
            received[index],
            len(latencies[index]),
            *percentiles(latencies[index], (50, 95, 99)),
        )
        for index in range(buckets)
    ]


def percentiles(values: Sequence[float], points: Iterable[int]) -> list[float | None]:
    """The given percentiles of ``values`` (None for each when there are none)."""
    if not values:
        return [None for _ in points]
    if len(values) == 1:
        return [round(values[0], 1) for _ in points]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [round(cuts[point - 1], 1) for point in points]


def endpoint_figures(
    store: Store, window: str, known: Iterable[str] = (), scope: Scope = REGION
) -> list[EndpointFigures]:
    """Backlog, errors and health of every endpoint, known from the region or seen in the store."""
    since = window_start(window)
    figures: dict[str, EndpointFigures] = {}

    def of(endpoint: str) -> EndpointFigures:
        if endpoint not in figures:
            figures[endpoint] = EndpointFigures(endpoint, Address.parse(endpoint).office)
        return figures[endpoint]

    for endpoint in known:
        if scope.owns_endpoint(endpoint):
            of(endpoint)
    with store.reading() as connection:
        _add_backlog(connection, of, scope)
        _add_window_counts(connection, of, since, scope)
        _add_health(connection, of, scope)
    return sorted(figures.values(), key=lambda item: item.endpoint)


def office_figures(
    store: Store,
    window: str,
    endpoints: Sequence[EndpointFigures],
    names: dict[str, str],
    scope: Scope = REGION,
) -> list[OfficeFigures]:
    """Each office's traffic, summed over its endpoints, plus the documents it received."""
    since = window_start(window)
    offices: dict[str, OfficeFigures] = {
        office: OfficeFigures(office, name)
        for office, name in names.items()
        if scope.owns_office(office)
    }
    for item in endpoints:
        office = offices.setdefault(item.office, OfficeFigures(item.office))
        office.delivered += item.delivered
        office.backlog += item.backlog
        office.attempts += item.attempts
        office.failed_attempts += item.failed_attempts
        office.dead_now += item.dead_now
        office.oldest_waiting_at = _earliest(office.oldest_waiting_at, item.oldest_waiting_at)
    with store.reading() as connection:
        for destination, count in connection.execute(
            select(MESSAGES.c.destination, func.count())
            .where(MESSAGES.c.received_at >= since, scope.messages())
            .group_by(MESSAGES.c.destination)
        ):
            office_id = Address.parse(destination).office
            if not scope.owns_office(office_id):
                continue
            offices.setdefault(office_id, OfficeFigures(office_id)).received += int(count)
    return sorted(offices.values(), key=lambda item: item.office)


_FAR = datetime.max.replace(tzinfo=utcnow().tzinfo)
SORT_KEYS = {
    "backlog": lambda item: -item.backlog,
    "error_rate": lambda item: -item.error_rate,
    "oldest": lambda item: aware(item.oldest_waiting_at) if item.oldest_waiting_at else _FAR,
}


def sort_rows(rows: list[Any], key: str) -> list[Any]:
    """Rows sorted by backlog or error rate (highest first) or oldest waiting (oldest first)."""
    if key not in SORT_KEYS:
        return rows
    return sorted(rows, key=SORT_KEYS[key])


def find_messages(
    store: Store, text: str, scope: Scope = REGION, *, by_id_only: bool = False
) -> list[FoundMessage]:
    """Messages whose envelope id, case id or sender's id (e.g. the ePUAP document) is ``text``.

    The ePUAP pull inbound keeps the platform's identity of a document as the message's
    external id; e-Doręczenia's message id travels in a header, so headers are searched too.
    ``by_id_only`` (for viewers) matches whole ids only: no part of an external id (which
    names a citizen's mailbox) and no free text of the headers (which hold their names).
    """
    text = text.strip()
    if not text:
        return []
    query = (
        select(*_found_columns())
        .where(_by_id(text) if by_id_only else _by_any(text), scope.messages())
        .order_by(MESSAGES.c.received_at.desc())
        .limit(SEARCH_LIMIT)
    )
    with store.reading() as connection:
        return [_found(row) for row in connection.execute(query)]


def _by_id(text: str) -> Any:
    # The headers are stored as JSON written with json.dumps' default separators, so one
    # header's whole value is this exact fragment.
    header = json.dumps({EDORECZENIA_MESSAGE_ID: text}, ensure_ascii=False)[1:-1]
    return or_(
        MESSAGES.c.id == text,
        MESSAGES.c.correlation_id == text,
        MESSAGES.c.external_id == text,
        MESSAGES.c.headers.like(f"%{escape_like(header)}%", escape="\\"),
    )


def _by_any(text: str) -> Any:
    pattern = f"%{escape_like(text)}%"
    return or_(
        MESSAGES.c.id == text,
        MESSAGES.c.correlation_id == text,
        MESSAGES.c.external_id == text,
        MESSAGES.c.external_id.like(pattern, escape="\\"),
        MESSAGES.c.headers.like(pattern, escape="\\"),
    )


def trace(store: Store, message_id: str, scope: Scope = REGION) -> Trace | None:
    """Every hop, attempt, receipt, signature check and audit entry of one message.

    None if there is no such message, or it is not in ``scope``: to an office's account
    another office's message does not exist.
    """
    with store.reading() as connection:
        message = connection.execute(
            select(MESSAGES).where(MESSAGES.c.id == message_id, scope.messages())
        ).first()
        if message is None:
            return None
        found = Trace(
            message=_message_dict(message),
            headers=json.loads(message.headers or "{}"),
            body=message.body,
            deliveries=_deliveries(connection, message_id, scope),
            receipts=_rows(
                connection, RECEIPTS, RECEIPTS.c.message_id == message_id, ("document",)
            ),
            signature_checks=_rows(
                connection, SIGNATURE_CHECKS, SIGNATURE_CHECKS.c.message_id == message_id
            ),
            audit=_rows(connection, AUDIT, AUDIT.c.message_id == message_id),
            case_events=_rows(
                connection, CASE_EVENTS, CASE_EVENTS.c.case_id == message.correlation_id
            ),
            same_case=[
                _found(row)
                for row in connection.execute(
                    select(*_found_columns())
                    .where(
                        MESSAGES.c.correlation_id == message.correlation_id,
                        MESSAGES.c.id != message_id,
                        scope.messages(),
                    )
                    .order_by(MESSAGES.c.received_at)
                    .limit(SEARCH_LIMIT)
                )
            ],
        )
    found.hops = _hops(found)
    return found


def operator_actions(store: Store, limit: int = 50, scope: Scope = REGION) -> list[dict[str, Any]]:
    """The newest replays, pauses and resumes, with who did them and why (from the audit log).

    An office's account sees the actions on its messages and its endpoints. An endpoint's
    name is inside the row's JSON details, which the two databases query differently, so
    the office's rows are picked here from the newest rows, a bounded number of them.
    """
    query = select(AUDIT).where(AUDIT.c.event.in_(OPERATOR_EVENTS))
    if not scope.region_wide:
        its_messages = select(MESSAGES.c.id).where(scope.messages())
        query = query.where(or_(AUDIT.c.message_id.is_(None), AUDIT.c.message_id.in_(its_messages)))
    scanned = limit if scope.region_wide else ACTIONS_SCANNED
    with store.reading() as connection:
        rows = connection.execute(query.order_by(AUDIT.c.id.desc()).limit(scanned)).all()
    actions = [_with_details(_plain(row)) for row in rows]
    return [action for action in actions if _action_in(action, scope)][:limit]


def _action_in(action: dict[str, Any], scope: Scope) -> bool:
    if action["message_id"] is not None:
        return True  # the query kept only the scope's messages
    endpoint = action["details"].get("endpoint")
    return isinstance(endpoint, str) and scope.owns_endpoint(endpoint)


def status_counts(store: Store, scope: Scope = REGION) -> dict[str, int]:
    """How many messages stand in each status."""
    with store.reading() as connection:
        rows = connection.execute(
            select(MESSAGES.c.status, func.count())
            .where(scope.messages())
            .group_by(MESSAGES.c.status)
        ).all()
    return {str(status): int(count) for status, count in rows}


def dead_letters(
    store: Store,
    endpoint: str | None = None,
    scope: Scope = REGION,
    *,
    after: Cursor | None = None,
    limit: int = 50,
) -> Page[dict[str, Any]]:
    """A page of dead deliveries with their message's source and case, newest first.

    One query joins each delivery to its message: no list of ids travels to the database.
    """
    query = (
        select(
            *DEAD_DELIVERY_COLUMNS,
            MESSAGES.c.source,
            MESSAGES.c.correlation_id,
            MESSAGES.c.received_at,
        )
        .join(MESSAGES, MESSAGES.c.id == DELIVERIES.c.message_id)
        .where(_dead(), scope.deliveries())
    )
    if endpoint is not None:
        query = query.where(DELIVERIES.c.endpoint == endpoint)
    following = keyset_after(DELIVERIES.c.updated_at, DELIVERIES.c.id, after, newest_first=True)
    if following is not None:
        query = query.where(following)
    query = query.order_by(DELIVERIES.c.updated_at.desc(), DELIVERIES.c.id.desc())
    with store.reading() as connection:
        rows = connection.execute(query.limit(limit + 1)).all()
    return page_of(
        [_dead_letter(row) for row in rows],
        limit,
        lambda item: Cursor(item["died_at"], item["delivery_id"]),
    )


def _dead_letter(row: Any) -> dict[str, Any]:
    return {
        "delivery_id": row.id,
        "message_id": row.message_id,
        "endpoint": row.endpoint,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "died_at": aware(row.updated_at),
        "source": row.source,
        "correlation_id": row.correlation_id,
        "received_at": aware(row.received_at),
    }


def delivery_endpoint(store: Store, delivery_id: str) -> str | None:
    """The endpoint of a delivery, or None if there is no such delivery."""
    with store.reading() as connection:
        found = connection.scalar(
            select(DELIVERIES.c.endpoint).where(DELIVERIES.c.id == delivery_id)
        )
    return None if found is None else str(found)


def oldest_waiting(store: Store) -> dict[str, datetime]:
    """Per endpoint, when the oldest delivery still waiting was created."""
    with store.reading() as connection:
        rows = connection.execute(
            select(DELIVERIES.c.endpoint, func.min(DELIVERIES.c.created_at))
            .where(DELIVERIES.c.status.in_(WAITING_STATUSES))
            .group_by(DELIVERIES.c.endpoint)
        ).all()
    return {str(endpoint): aware(oldest) for endpoint, oldest in rows}


def dead_since(store: Store, since: datetime) -> dict[str, int]:
    """Per endpoint, how many deliveries died since ``since``."""
    with store.reading() as connection:
        rows = connection.execute(
            select(DELIVERIES.c.endpoint, func.count())
            .where(_dead(), DELIVERIES.c.updated_at >= since)
            .group_by(DELIVERIES.c.endpoint)
        ).all()
    return {str(endpoint): int(count) for endpoint, count in rows}


# ---- helpers ------------------------------------------------------------------------


def _dead() -> Any:
    return DELIVERIES.c.status == DeliveryStatus.DEAD.value


def _count(connection: Connection, table: Table, *conditions: Any) -> int:
    return int(
        connection.scalar(select(func.count()).select_from(table).where(and_(*conditions))) or 0
    )


def _bucket(moment: datetime, since: datetime, step: timedelta, buckets: int) -> int:
    return min(max(int((moment - since) / step), 0), buckets - 1)


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    candidates = [aware(moment) for moment in (first, second) if moment is not None]
    return min(candidates) if candidates else None


def _add_backlog(connection: Connection, of: Any, scope: Scope) -> None:
    for endpoint, status, count, oldest in connection.execute(
        select(
            DELIVERIES.c.endpoint,
            DELIVERIES.c.status,
            func.count(),
            func.min(DELIVERIES.c.created_at),
        )
        .where(scope.deliveries())
        .group_by(DELIVERIES.c.endpoint, DELIVERIES.c.status)
    ):
        item = of(endpoint)
        if status in WAITING_STATUSES:
            item.backlog += int(count)
            item.oldest_waiting_at = _earliest(item.oldest_waiting_at, oldest)
        elif status == DeliveryStatus.DEAD.value:
            item.dead_now = int(count)


def _add_window_counts(connection: Connection, of: Any, since: datetime, scope: Scope) -> None:
    for endpoint, count in connection.execute(
        select(DELIVERIES.c.endpoint, func.count())
        .where(DELIVERIES.c.delivered_at >= since, scope.deliveries())
        .group_by(DELIVERIES.c.endpoint)
    ):
        of(endpoint).delivered = int(count)
    for endpoint, outcome, count in connection.execute(
        select(DELIVERIES.c.endpoint, ATTEMPTS.c.outcome, func.count())
        .join(ATTEMPTS, ATTEMPTS.c.delivery_id == DELIVERIES.c.id)
        .where(ATTEMPTS.c.started_at >= since, scope.deliveries())
        .group_by(DELIVERIES.c.endpoint, ATTEMPTS.c.outcome)
    ):
        item = of(endpoint)
        item.attempts += int(count)
        if outcome in FAILED_OUTCOMES:
            item.failed_attempts += int(count)


def _add_health(connection: Connection, of: Any, scope: Scope) -> None:
    for endpoint, last_success in connection.execute(
        select(DELIVERIES.c.endpoint, func.max(DELIVERIES.c.delivered_at))
        .where(scope.deliveries())
        .group_by(DELIVERIES.c.endpoint)
    ):
        if last_success is not None:
            of(endpoint).last_success_at = aware(last_success)
    latest_error = (
        select(DELIVERIES.c.endpoint, func.max(ATTEMPTS.c.id).label("attempt_id"))
        .join(ATTEMPTS, ATTEMPTS.c.delivery_id == DELIVERIES.c.id)
        .where(ATTEMPTS.c.outcome.in_(FAILED_OUTCOMES), scope.deliveries())
        .group_by(DELIVERIES.c.endpoint)
        .subquery()
    )
    for endpoint, finished_at, error_class, error_text in connection.execute(
        select(
            latest_error.c.endpoint,
            ATTEMPTS.c.finished_at,
            ATTEMPTS.c.error_class,
            ATTEMPTS.c.error_text,
        ).join(ATTEMPTS, ATTEMPTS.c.id == latest_error.c.attempt_id)
    ):
        item = of(endpoint)
        item.last_error_at = aware(finished_at) if finished_at else None
        item.last_error = f"{error_class or 'error'}: {error_text or ''}".strip()
    for row in connection.execute(
        select(ENDPOINT_STATES).where(scope.deliveries(ENDPOINT_STATES.c.endpoint))
    ):
        item = of(row.endpoint)
        item.circuit = row.state
        item.circuit_reason = row.reason
        item.circuit_since = aware(row.updated_at)


def _found_columns() -> list[Any]:
    return [
        MESSAGES.c.id,
        MESSAGES.c.correlation_id,
        MESSAGES.c.external_id,
        MESSAGES.c.source,
        MESSAGES.c.destination,
        MESSAGES.c.status,
        MESSAGES.c.received_at,
    ]


def _found(row: Any) -> FoundMessage:
    return FoundMessage(
        row.id,
        row.correlation_id,
        row.external_id,
        row.source,
        row.destination,
        row.status,
        aware(row.received_at),
    )


def _plain(row: Any, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    values = dict(row._mapping)
    for name in leave_out:
        values.pop(name, None)
    return {
        key: aware(value) if isinstance(value, datetime) else value for key, value in values.items()
    }


def _with_details(values: dict[str, Any]) -> dict[str, Any]:
    values["details"] = json.loads(values.get("details") or "{}")
    return values


def _rows(
    connection: Connection, table: Table, condition: Any, leave_out: Sequence[str] = ()
) -> list[dict[str, Any]]:
    rows = connection.execute(select(table).where(condition).order_by(table.c.id)).all()
    plain = [_plain(row, leave_out) for row in rows]
    return [_with_details(item) if "details" in item else item for item in plain]


def _message_dict(row: Any) -> dict[str, Any]:
    return _plain(row, ("body", "headers"))


def _deliveries(connection: Connection, message_id: str, scope: Scope) -> list[dict[str, Any]]:
    deliveries = [
        _plain(row)
        for row in connection.execute(
            select(DELIVERIES)
            .where(DELIVERIES.c.message_id == message_id, scope.deliveries())
            .order_by(DELIVERIES.c.created_at)
        )
    ]
    attempts = defaultdict(list)
    for row in connection.execute(
        select(ATTEMPTS)
        .join(DELIVERIES, DELIVERIES.c.id == ATTEMPTS.c.delivery_id)
        .where(DELIVERIES.c.message_id == message_id, scope.deliveries())
        .order_by(ATTEMPTS.c.number)
    ):
        attempts[row.delivery_id].append(_plain(row))
    for delivery in deliveries:
        delivery["attempts"] = attempts[delivery["id"]]
    return deliveries


def _hops(found: Trace) -> list[Hop]:
    """The journey as a timeline: sent, received, each audited change, each attempt, receipts."""
    hops: list[Hop] = []
    submitted = found.message.get("submitted_at")
    if submitted is not None:
        hops.append(Hop(submitted, "submitted", found.message["source"]))
    for entry in found.audit:
        hops.append(Hop(entry["occurred_at"], entry["event"], _audit_summary(entry["details"])))
    for delivery in found.deliveries:
        for attempt in delivery["attempts"]:
            outcome = attempt["outcome"] or "running"
            duration = attempt["duration_ms"]
            took = f", {duration:.0f} ms" if duration is not None else ""
            hops.append(
                Hop(
                    attempt["started_at"],
                    "attempt",
                    f"{delivery['endpoint']} #{attempt['number']}: {outcome}{took}",
                )
            )
    hops.sort(key=lambda hop: hop.at)
    timed: list[Hop] = []
    for index, hop in enumerate(hops):
        previous = hops[index - 1].at if index else None
        since = (hop.at - previous).total_seconds() * 1000 if previous else None
        timed.append(Hop(hop.at, hop.what, hop.detail, since))
    return timed


def _audit_summary(details: dict[str, Any]) -> str:
    shown = {key: value for key, value in details.items() if key not in {"sha256"}}
    return ", ".join(f"{key}={value}" for key, value in sorted(shown.items()))
