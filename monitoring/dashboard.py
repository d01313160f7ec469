"""The dashboard's pages: overview, trace, dead letters, late receipts, quarantine, alerts.

Server-rendered with Jinja, no build step; the two charts are drawn by the vendored uPlot
from the series the page carries as JSON. Every page shows the account's scope only (one
office, or the region); the long lists are keyset pages (``?after=<cursor>``).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from hub.errors import HubError
from hub.store.pages import BadCursor, Cursor, bounded, page_of
from hub.store.quarantine import quarantine_cursor, quarantined
from hub.store.queries import late_cursor
from monitoring import queries
from monitoring.actions import NotFound, OperatorActions
from monitoring.alerts import alert_log
from monitoring.auth import Account, Role, current_account, page_requires
from monitoring.context import endpoint_names, office_names, settings, store
from monitoring.i18n import translate
from monitoring.masking import mask_text
from monitoring.presenting import (
    alert_entry,
    endpoint_row,
    office_row,
    plain,
    trace_document,
)
from monitoring.queues import QueueDepth, queue_depths
from monitoring.scope import Scope

blueprint = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)


def _account() -> Account:
    account = current_account()
    assert account is not None  # the page's guard let only accounts through
    return account


def _scope() -> Scope:
    return Scope(_account().office)


def _cursor() -> Cursor | None:
    text = request.args.get("after", "").strip()
    return Cursor.parse(text) if text else None


@blueprint.errorhandler(BadCursor)
def _bad_cursor(error: BadCursor) -> ResponseReturnValue:
    return render_template("message.html", text=error.reason), 400


@blueprint.errorhandler(NotFound)
def _not_found(error: NotFound) -> ResponseReturnValue:
    return render_template("message.html", text=error.reason), 404


@blueprint.get("/")
@page_requires(Role.VIEWER)
def overview() -> ResponseReturnValue:
    """Last hour or day: counts, charts, offices, endpoints with health, queue depths."""
    window = request.args.get("window", "hour")
    if window not in queries.WINDOWS:
        window = "hour"
    scope = _scope()
    figures = queries.endpoint_figures(store(), window, endpoint_names(scope), scope)
    offices = queries.office_figures(store(), window, figures, office_names(scope), scope)
    endpoint_sort = request.args.get("endpoints_sort", "backlog")
    office_sort = request.args.get("offices_sort", "backlog")
    return render_template(
        "overview.html",
        window=window,
        overview=queries.overview(store(), window, scope),
        series=plain(queries.series(store(), window, scope=scope)),
        endpoints=[
            endpoint_row(item, _account()) for item in queries.sort_rows(figures, endpoint_sort)
        ],
        offices=[office_row(item) for item in queries.sort_rows(offices, office_sort)],
        endpoint_sort=endpoint_sort,
        office_sort=office_sort,
        queues=_queues(),
    )


def _queues() -> list[QueueDepth] | None:
    return scoped_queue_depths(_scope())


def scoped_queue_depths(scope: Scope) -> list[QueueDepth] | None:
    """The hub's queues for the region's accounts; None if RabbitMQ does not answer.

    Every queue carries every office's traffic (an endpoint has no queue of its own), so an
    office's account sees none of them: its endpoints' backlogs come from the store.
    """
    if not scope.region_wide:
        return []
    hub_settings = settings()
    try:
        return queue_depths(hub_settings.amqp_url, hub_settings.topology)
    except HubError:
        return None


@blueprint.get("/trace")
@page_requires(Role.VIEWER)
def search() -> ResponseReturnValue:
    """Find messages by envelope, case or sender's document id; one match opens its trace."""
    text = request.args.get("q", "").strip()
    by_id_only = not _account().sees_personal_data
    results = queries.find_messages(store(), text, _scope(), by_id_only=by_id_only) if text else []
    if len(results) == 1:
        return redirect(url_for("dashboard.message", message_id=results[0].envelope_id))
    return render_template("search.html", text=text, results=results)


@blueprint.get("/messages/<message_id>")
@page_requires(Role.VIEWER)
def message(message_id: str) -> ResponseReturnValue:
    """One message's whole journey."""
    found = queries.trace(store(), message_id, _scope())
    if found is None:
        return render_template("search.html", text=message_id, results=[]), 404
    return render_template("trace.html", trace=trace_document(found, _account()))


@blueprint.get("/dead")
@page_requires(Role.VIEWER)
def dead() -> ResponseReturnValue:
    """A page of dead deliveries, newest first, with replay for operators."""
    endpoint = request.args.get("endpoint") or None
    parked = queries.dead_letters(
        store(), endpoint, _scope(), after=_cursor(), limit=bounded(_limit())
    )
    if not _account().sees_personal_data:
        for item in parked.items:
            item["last_error"] = mask_text(item["last_error"])
    return render_template("dead.html", dead=parked.items, next=parked.next, endpoint=endpoint)


@blueprint.get("/receipts")
@page_requires(Role.VIEWER)
def late_receipts() -> ResponseReturnValue:
    """A page of deliveries whose awaited receipt is overdue, the longest overdue first."""
    limit = bounded(_limit())
    rows = store().late_receipts(after=_cursor(), limit=limit + 1, office=_account().office)
    late = page_of(rows, limit, late_cursor)
    return render_template("receipts.html", late=late.items, next=late.next)


@blueprint.get("/quarantine")
@page_requires(Role.VIEWER)
def quarantine() -> ResponseReturnValue:
    """A page of refused inputs, newest first (region-wide accounts only).

    Refused input has no office it provably belongs to (it was refused before the hub
    knew), so an office's account does not see the quarantine at all.
    """
    if not _account().region_wide:
        return render_template("forbidden.html", needed="region"), 403
    limit = bounded(_limit())
    channel = request.args.get("channel") or None
    rows = quarantined(store(), channel, limit=limit + 1, after=_cursor())
    kept = page_of(rows, limit, quarantine_cursor)
    masked = not _account().sees_personal_data
    items = [
        {**plain(item), "reason": mask_text(item.reason) if masked else item.reason}
        for item in kept.items
    ]
    return render_template("quarantine.html", items=items, next=kept.next, channel=channel)


def _limit() -> int | None:
    text = request.args.get("limit", "")
    return int(text) if text.isdigit() else None


@blueprint.post("/dead/<delivery_id>/replay")
@page_requires(Role.OPERATOR)
def replay(delivery_id: str) -> ResponseReturnValue:
    """Replay one dead delivery from the form, then back to the list."""
    reason = request.form.get("reason", "").strip() or "replayed from the dashboard"
    outcome = OperatorActions(store(), settings(), _account()).replay(delivery_id, reason)
    flash(translate("replayed") if outcome.replayed else translate("not_dead"))
    back = request.form.get("back", "")
    # Back only to a page of the dashboard: never an open redirect.
    return redirect(back if back.startswith("/dashboard/") else url_for("dashboard.dead"))


@blueprint.post("/endpoints/<name>/pause")
@page_requires(Role.OPERATOR)
def pause(name: str) -> ResponseReturnValue:
    """Pause an endpoint from the overview."""
    reason = request.form.get("reason", "").strip() or "paused from the dashboard"
    OperatorActions(store(), settings(), _account()).pause(name, reason)
    flash(f"{translate('paused')}: {name}")
    return redirect(url_for("dashboard.overview"))


@blueprint.post("/endpoints/<name>/resume")
@page_requires(Role.OPERATOR)
def resume(name: str) -> ResponseReturnValue:
    """Resume an endpoint from the overview."""
    OperatorActions(store(), settings(), _account()).resume(name)
    flash(f"{translate('resumed')}: {name}")
    return redirect(url_for("dashboard.overview"))


@blueprint.get("/alerts")
@page_requires(Role.VIEWER)
def alerts() -> ResponseReturnValue:
    """The alert log."""
    account = _account()
    alerts = alert_log(store(), scope=_scope())
    return render_template("alerts.html", alerts=[alert_entry(item, account) for item in alerts])


@blueprint.get("/actions")
@page_requires(Role.VIEWER)
def actions() -> ResponseReturnValue:
    """Who replayed, paused and resumed what, from the audit log."""
    return render_template(
        "actions.html", actions=queries.operator_actions(store(), scope=_scope())
    )
