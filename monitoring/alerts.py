"""Alert rules over the store, evaluated by ``hub alerts``, kept in the alert log, posted once.

Rules, each per endpoint:

- ``dead-letters``: deliveries died within ``alert_dead_window_s``;
- ``circuit-open``: the circuit has stayed open for ``alert_open_circuit_s``;
- ``receipts-late``: an awaited receipt (a UPD) is past its deadline;
- ``backlog-age``: the oldest waiting delivery is older than the endpoint's
  ``max_backlog_age_s`` option in the region file, else ``alert_max_backlog_age_s``
  (until the service catalogue carries each service's statutory deadline).

Each alert is one row of ``alerts`` from the cycle that first sees its condition to the
cycle that no longer does; it fires once the condition has held for the rule's duration,
and is posted to ``alert_webhook_url`` once when it fires and once when it resolves, so an
ongoing alert is not posted every cycle. A failed post is tried again next cycle.

Evaluation is its own single-instance job (``hub alerts``, holding a database lease like
the relay and the poller) rather than a thread of ``hub serve``: the HTTP server runs as
several gunicorn workers, which would each evaluate and race, and alerts must keep coming
when the HTTP side is down or swamped.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import click
import requests
from sqlalchemy import insert, select, update

from hub.breaker import Circuit
from hub.errors import ConfigurationError, StoreUnavailable
from hub.logging import get_logger
from hub.region import Region, load_region
from hub.settings import Settings
from hub.singleton import SingletonLease
from hub.store.queries import late_receipt_counts
from hub.store.repository import Store, aware, utcnow
from hub.store.tables import ALERTS, ENDPOINT_STATES
from monitoring import queries
from monitoring.scope import Scope

log = get_logger(__name__)

ALERTS_LOCK = "alert-evaluator"
WEBHOOK_TIMEOUT_S = 5.0
ALERT_LOG_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's condition holding for one subject in this cycle."""

    rule: str
    subject: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    # How long the condition must hold before the alert fires.
    hold_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one evaluation changed."""

    fired: list[str]
    resolved: list[str]
    posted: int
    ongoing: int


Post = Callable[[str, dict[str, Any]], bool]


class AlertEvaluator:
    """Evaluates the rules against the store and keeps the alert log."""

    def __init__(
        self, store: Store, settings: Settings, region: Region | None, post: Post | None = None
    ) -> None:
        self._store = store
        self._settings = settings
        self._region = region
        self._post = post or post_webhook

    # ---- the rules --------------------------------------------------------------------

    def findings(self, now: datetime) -> list[Finding]:
        """Every rule's conditions that hold now."""
        return [
            *self._dead_letters(now),
            *self._open_circuits(),
            *self._late_receipts(now),
            *self._old_backlogs(now),
        ]

    def _dead_letters(self, now: datetime) -> Iterable[Finding]:
        window_s = self._settings.alert_dead_window_s
        for endpoint, count in queries.dead_since(
            self._store, now - timedelta(seconds=window_s)
        ).items():
            yield Finding(
                "dead-letters",
                endpoint,
                "critical",
                f"{count} deliver{'y' if count == 1 else 'ies'} to {endpoint} died "
                f"in the last {window_s / 60:.0f} min",
                {"dead": count, "window_s": window_s},
            )

    def _open_circuits(self) -> Iterable[Finding]:
        with self._store.reading() as connection:
            rows = connection.execute(
                select(ENDPOINT_STATES).where(ENDPOINT_STATES.c.state == Circuit.OPEN.value)
            ).all()
        hold_s = self._settings.alert_open_circuit_s
        for row in rows:
            yield Finding(
                "circuit-open",
                row.endpoint,
                "critical",
                f"{row.endpoint}'s circuit has been open for over {hold_s / 60:.0f} min "
                f"({row.consecutive_failures} failures in a row)",
                {"failures": row.consecutive_failures, "reason": row.reason},
                hold_s,
            )

    def _late_receipts(self, now: datetime) -> Iterable[Finding]:
        # Counted per endpoint in SQL: a platform outage can leave thousands overdue.
        for endpoint, count in late_receipt_counts(self._store, now).items():
            yield Finding(
                "receipts-late",
                endpoint,
                "warning",
                f"{count} receipt(s) from {endpoint} past their deadline",
                {"late": count},
            )

    def _old_backlogs(self, now: datetime) -> Iterable[Finding]:
        for endpoint, oldest in queries.oldest_waiting(self._store).items():
            limit_s = self.max_backlog_age_s(endpoint)
            age_s = (now - oldest).total_seconds()
            if age_s > limit_s:
                yield Finding(
                    "backlog-age",
                    endpoint,
                    "warning",
                    f"a document has waited {age_s / 60:.0f} min for {endpoint} "
                    f"(allowed {limit_s / 60:.0f} min)",
                    {"oldest_waiting_at": oldest.isoformat(), "limit_s": limit_s},
                )

    def max_backlog_age_s(self, endpoint: str) -> float:
        """The endpoint's own limit from the region file, else the setting."""
        configured = self._region.endpoints.get(endpoint) if self._region else None
        if configured is not None and "max_backlog_age_s" in configured.options:
            return float(configured.options["max_backlog_age_s"])
        return self._settings.alert_max_backlog_age_s

    # ---- one cycle ----------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> CycleResult:
        """Record what holds now, fire what held long enough, resolve what ended, and post."""
        now = now or utcnow()
        findings = {(item.rule, item.subject): item for item in self.findings(now)}
        fired: list[str] = []
        resolved: list[str] = []
        with self._store.transaction() as connection:
            ongoing = {
                (row.rule, row.subject): row
                for row in connection.execute(select(ALERTS).where(ALERTS.c.resolved_at.is_(None)))
            }
            for key, finding in findings.items():
                row = ongoing.get(key)
                started_at = aware(row.started_at) if row is not None else now
                fires = row is None or row.fired_at is None
                fires = fires and (now - started_at).total_seconds() >= finding.hold_s
                values: dict[str, Any] = {
                    "severity": finding.severity,
                    "summary": finding.summary,
                    "details": json.dumps(finding.details, sort_keys=True, default=str),
                    "last_seen_at": now,
                }
                if fires:
                    values["fired_at"] = now
                    fired.append(finding.summary)
                if row is None:
                    connection.execute(
                        insert(ALERTS).values(
                            rule=finding.rule, subject=finding.subject, started_at=now, **values
                        )
                    )
                else:
                    connection.execute(update(ALERTS).where(ALERTS.c.id == row.id).values(**values))
            for key, row in ongoing.items():
                if key not in findings:
                    connection.execute(
                        update(ALERTS).where(ALERTS.c.id == row.id).values(resolved_at=now)
                    )
                    resolved.append(row.summary)
        posted = self._notify(now)
        return CycleResult(fired, resolved, posted, len(findings))

    def _notify(self, now: datetime) -> int:
        """Post fired alerts not yet told, and resolutions of alerts that were told."""
        url = self._settings.alert_webhook_url
        if not url:
            return 0
        with self._store.reading() as connection:
            due = connection.execute(
                select(ALERTS).where(
                    (ALERTS.c.fired_at.is_not(None) & ALERTS.c.notified_at.is_(None))
                    | (
                        ALERTS.c.resolved_at.is_not(None)
                        & ALERTS.c.notified_at.is_not(None)
                        & ALERTS.c.resolved_notified_at.is_(None)
                    )
                )
            ).all()
        posted = 0
        for row in due:
            # An alert that fired and ended before it could be told is told as resolved.
            status = "resolved" if row.resolved_at is not None else "firing"
            if not self._post(url, webhook_payload(row, status, self._settings.queue_prefix)):
                continue
            column = "resolved_notified_at" if row.notified_at is not None else "notified_at"
            changes = {column: now}
            if status == "resolved" and row.notified_at is None:
                changes["resolved_notified_at"] = now
            with self._store.transaction() as connection:
                connection.execute(update(ALERTS).where(ALERTS.c.id == row.id).values(**changes))
            posted += 1
        return posted


def webhook_payload(row: Any, status: str, hub_name: str) -> dict[str, Any]:
    """The JSON posted for one alert; ``text`` suits chat webhooks (Slack, Mattermost)."""
    icon = "✅" if status == "resolved" else ("🔴" if row.severity == "critical" else "🟠")
    return {
        "text": f"{icon} [{hub_name}] {status}: {row.summary}",
        "status": status,
        "rule": row.rule,
        "subject": row.subject,
        "severity": row.severity,
        "summary": row.summary,
        "details": json.loads(row.details or "{}"),
        "started_at": aware(row.started_at).isoformat(),
        "resolved_at": aware(row.resolved_at).isoformat() if row.resolved_at else None,
        "alert_id": row.id,
    }


def post_webhook(url: str, payload: dict[str, Any]) -> bool:
    """POST ``payload`` as JSON; False (logged) if the webhook did not take it."""
    try:
        response = requests.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
    except requests.RequestException as exc:
        log.warning("alert_post_failed", rule=payload["rule"], reason=str(exc))
        return False
    if response.status_code >= 300:
        log.warning("alert_post_refused", rule=payload["rule"], status=response.status_code)
        return False
    return True


def alert_log(
    store: Store, limit: int = ALERT_LOG_LIMIT, scope: Scope | None = None
) -> list[dict[str, Any]]:
    """The alert log, ongoing alerts first, then the newest resolved.

    Every rule's subject is an endpoint, so an office's account sees its endpoints' alerts.
    """
    scope = scope or Scope()
    with store.reading() as connection:
        rows = connection.execute(
            select(ALERTS)
            .where(scope.deliveries(ALERTS.c.subject))
            .order_by(ALERTS.c.resolved_at.is_not(None), ALERTS.c.started_at.desc())
            .limit(limit)
        ).all()
    alerts = []
    for row in rows:
        item = {
            key: aware(value) if isinstance(value, datetime) else value
            for key, value in row._mapping.items()
        }
        item["details"] = json.loads(row.details or "{}")
        item["state"] = "resolved" if row.resolved_at else ("firing" if row.fired_at else "pending")
        alerts.append(item)
    return alerts


def run_evaluator(
    store: Store, evaluator: AlertEvaluator, settings: Settings, stop: threading.Event
) -> None:
    """Evaluate every ``alert_interval_s`` while holding the evaluator's lease, until stopped."""
    holder = f"{socket.gethostname()}:{uuid.uuid4()}"
    # The lease outlives a whole interval, so a sleeping evaluator keeps it.
    lease_s = max(settings.singleton_lease_s, settings.alert_interval_s * 3)
    lease = SingletonLease(store, ALERTS_LOCK, holder, lease_s)
    try:
        while not stop.is_set():
            try:
                if lease.held():
                    _report(evaluator.evaluate())
            except StoreUnavailable as exc:
                log.warning("alerts_paused", reason=exc.reason)
            stop.wait(settings.alert_interval_s)
    finally:
        lease.release()


def _report(result: CycleResult) -> None:
    for summary in result.fired:
        log.warning("alert_fired", summary=summary)
    for summary in result.resolved:
        log.info("alert_resolved", summary=summary)


@click.command("alerts")
@click.option("--once", is_flag=True, help="Evaluate once, print the outcome and exit.")
@click.pass_obj
def alerts_command(settings: Settings, once: bool) -> None:
    """Evaluate the alert rules every alert_interval_s (one evaluator per database).

    ``--once`` suits a scheduler (cron, a systemd timer); do not run it beside the loop.
    """
    from hub.runtime import stop_on_signals  # noqa: PLC0415 - the CLI loads machinery late

    store = Store.from_url(settings.database_url)
    try:
        region = load_region(settings.region_path)
    except ConfigurationError as exc:
        log.warning("alerts_without_region", reason=exc.reason)
        region = None
    evaluator = AlertEvaluator(store, settings, region)
    if once:
        result = evaluator.evaluate()
        for summary in result.fired:
            click.echo(f"fired: {summary}")
        for summary in result.resolved:
            click.echo(f"resolved: {summary}")
        click.echo(f"{result.ongoing} alert(s) ongoing, {result.posted} posted")
        return
    stop = threading.Event()
    stop_on_signals(stop)
    run_evaluator(store, evaluator, settings, stop)
