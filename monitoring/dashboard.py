"""The dashboard's pages: overview, trace, dead letters, alerts and operator actions.

Server-rendered with Jinja, no build step; the two charts are drawn by the vendored uPlot
from the series the page carries as JSON.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from hub.errors import HubError
from monitoring import queries
from monitoring.actions import OperatorActions
from monitoring.alerts import alert_log
from monitoring.auth import Account, Role, current_account, page_requires
from monitoring.context import endpoint_names, office_names, settings, store
from monitoring.i18n import translate
from monitoring.masking import mask_text
from monitoring.presenting import endpoint_row, office_row, plain, trace_document
from monitoring.queues import QueueDepth, queue_depths

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


@blueprint.get("/")
@page_requires(Role.VIEWER)
def overview() -> ResponseReturnValue:
    """Last hour or day: counts, charts, offices, endpoints with health, queue depths."""
    window = request.args.get("window", "hour")
    if window not in queries.WINDOWS:
        window = "hour"
    figures = queries.endpoint_figures(store(), window, endpoint_names())
    offices = queries.office_figures(store(), window, figures, office_names())
    endpoint_sort = request.args.get("endpoints_sort", "backlog")
    office_sort = request.args.get("offices_sort", "backlog")
    return render_template(
        "overview.html",
        window=window,
        overview=queries.overview(store(), window),
        series=plain(queries.series(store(), window)),
        endpoints=[
            endpoint_row(item, _account()) for item in queries.sort_rows(figures, endpoint_sort)
        ],
        offices=[office_row(item) for item in queries.sort_rows(offices, office_sort)],
        endpoint_sort=endpoint_sort,
        office_sort=office_sort,
        queues=_queues(),
    )


def _queues() -> list[QueueDepth] | None:
    hub_settings = settings()
    try:
        return queue_depths(
            hub_settings.amqp_url,
            hub_settings.queue_prefix,
            endpoint_names(),
            hub_settings.retry_delays_s,
        )
    except HubError:
        return None


@blueprint.get("/trace")
@page_requires(Role.VIEWER)
def search() -> ResponseReturnValue:
    """Find messages by envelope, case or sender's document id; one match opens its trace."""
    text = request.args.get("q", "").strip()
    results = queries.find_messages(store(), text) if text else []
    if len(results) == 1:
        return redirect(url_for("dashboard.message", message_id=results[0].envelope_id))
    return render_template("search.html", text=text, results=results)


@blueprint.get("/messages/<message_id>")
@page_requires(Role.VIEWER)
def message(message_id: str) -> ResponseReturnValue:
    """One message's whole journey."""
    found = queries.trace(store(), message_id)
    if found is None:
        return render_template("search.html", text=message_id, results=[]), 404
    return render_template("trace.html", trace=trace_document(found, _account()))


@blueprint.get("/dead")
@page_requires(Role.VIEWER)
def dead() -> ResponseReturnValue:
    """Dead deliveries, with replay for operators."""
    endpoint = request.args.get("endpoint") or None
    parked = queries.dead_letters(store(), endpoint)
    if not _account().sees_personal_data:
        for item in parked:
            item["last_error"] = mask_text(item["last_error"])
    return render_template("dead.html", dead=parked, endpoint=endpoint)


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
    return render_template("alerts.html", alerts=alert_log(store()))


@blueprint.get("/actions")
@page_requires(Role.VIEWER)
def actions() -> ResponseReturnValue:
    """Who replayed, paused and resumed what, from the audit log."""
    return render_template("actions.html", actions=queries.operator_actions(store()))
