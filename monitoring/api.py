"""The JSON API behind the dashboard, described in ``openapi.yaml`` (served at /api/openapi.json).

Every route needs a logged-in person (the dashboard's session) or a bearer token:
viewers read, operators also replay and pause. An account scoped to one office sees and
acts on that office's share only; another office's message, endpoint or dead letter is
404, exactly as one that does not exist. The long lists are keyset pages: ``limit`` and
``after`` (the ``next`` cursor of the page before). Errors are RFC 7807 problem documents.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from hub.broker.connection import broker_addresses
from hub.store.pages import BadCursor, Cursor, Page, bounded, page_of
from hub.store.quarantine import quarantine_cursor, quarantined
from hub.store.queries import late_cursor
from hub.web import problem
from monitoring import queries
from monitoring.actions import NotFound, OperatorActions
from monitoring.alerts import alert_log
from monitoring.auth import Account, Role, api_requires, current_account
from monitoring.context import endpoint_names, office_names, settings, store
from monitoring.dashboard import scoped_queue_depths
from monitoring.masking import mask_text
from monitoring.presenting import (
    alert_entry,
    endpoint_row,
    office_row,
    plain,
    trace_document,
)
from monitoring.scope import Scope

blueprint = Blueprint("monitoring_api", __name__, url_prefix="/api")


def _account() -> Account:
    account = current_account()
    assert account is not None  # the route's guard let only accounts through
    return account


def _scope() -> Scope:
    return Scope(_account().office)


def _cursor() -> Cursor | None:
    text = request.args.get("after", "").strip()
    return Cursor.parse(text) if text else None


def _limit() -> int:
    text = request.args.get("limit", "")
    if text and not text.isdigit():
        raise _BadRequest("bad-limit", "limit must be a whole number")
    return bounded(int(text) if text else None)


def _page(page: Page[Any], name: str, items: list[Any]) -> Response:
    return jsonify(
        {name: items, "count": len(items), "next": None if page.next is None else str(page.next)}
    )


def _window() -> str:
    window = request.args.get("window", "hour")
    if window not in queries.WINDOWS:
        raise _BadRequest("bad-window", "window must be 15m, hour or day")
    return window


class _BadRequest(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@blueprint.errorhandler(_BadRequest)
def _bad_request(error: _BadRequest) -> ResponseReturnValue:
    return problem(400, error.code, error.detail)


@blueprint.errorhandler(BadCursor)
def _bad_cursor(error: BadCursor) -> ResponseReturnValue:
    return problem(400, error.code, error.reason)


@blueprint.errorhandler(NotFound)
def _not_found(error: NotFound) -> ResponseReturnValue:
    return problem(404, error.code, error.reason)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The API's OpenAPI 3.0 description (open, like any published contract)."""
    return jsonify(openapi_document())


@functools.cache
def openapi_document() -> dict[str, Any]:
    """``openapi.yaml`` parsed once."""
    text = (resources.files("monitoring") / "openapi.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


@blueprint.get("/summary")
@api_requires(Role.VIEWER)
def summary() -> Response:
    """Message counts by status."""
    return jsonify({"messages_by_status": queries.status_counts(store(), _scope())})


@blueprint.get("/receipts/late")
@api_requires(Role.VIEWER)
def late_receipts() -> Response:
    """A page of deliveries whose awaited receipt (e.g. a UPD) is overdue, longest first."""
    limit = _limit()
    rows = store().late_receipts(after=_cursor(), limit=limit + 1, office=_account().office)
    late = page_of(rows, limit, late_cursor)
    return _page(late, "late", plain(late.items))


@blueprint.get("/messages/<message_id>")
@api_requires(Role.VIEWER)
def message(message_id: str) -> ResponseReturnValue:
    """One message's trace: hops, deliveries and attempts, signatures, receipts, audit."""
    found = queries.trace(store(), message_id, _scope())
    if found is None:
        return problem(
            404, "not-found", f"the hub has never received a message with id {message_id}"
        )
    return jsonify(trace_document(found, _account()))


@blueprint.get("/search")
@api_requires(Role.VIEWER)
def search() -> Response:
    """Messages by envelope id, case id or the sender's document id (whole ids for viewers)."""
    by_id_only = not _account().sees_personal_data
    results = queries.find_messages(
        store(), request.args.get("q", ""), _scope(), by_id_only=by_id_only
    )
    return jsonify({"results": plain(results), "count": len(results)})


@blueprint.get("/overview")
@api_requires(Role.VIEWER)
def overview() -> Response:
    """Documents in and out over the window, and the throughput and latency series."""
    window, scope = _window(), _scope()
    return jsonify(
        {
            "overview": plain(queries.overview(store(), window, scope)),
            "series": plain(queries.series(store(), window, scope=scope)),
        }
    )


@blueprint.get("/endpoints")
@api_requires(Role.VIEWER)
def endpoints() -> Response:
    """Every endpoint's backlog, error rate, oldest waiting document and health."""
    scope = _scope()
    figures = queries.endpoint_figures(store(), _window(), endpoint_names(scope), scope)
    rows = queries.sort_rows(figures, request.args.get("sort", ""))
    return jsonify({"endpoints": [endpoint_row(item, _account()) for item in rows]})


@blueprint.get("/offices")
@api_requires(Role.VIEWER)
def offices() -> Response:
    """Every office's traffic and backlog over its endpoints."""
    window, scope = _window(), _scope()
    figures = queries.endpoint_figures(store(), window, endpoint_names(scope), scope)
    rows = queries.office_figures(store(), window, figures, office_names(scope), scope)
    rows = queries.sort_rows(rows, request.args.get("sort", ""))
    return jsonify({"offices": [office_row(item) for item in rows]})


@blueprint.get("/queues")
@api_requires(Role.VIEWER)
def queues() -> ResponseReturnValue:
    """Depth of every queue of the hub, read from RabbitMQ."""
    depths = scoped_queue_depths(_scope())
    if depths is None:
        where = broker_addresses(settings().amqp_url)
        return problem(503, "broker-unavailable", f"RabbitMQ at {where} does not answer")
    return jsonify({"queues": plain(depths)})


@blueprint.get("/dead")
@api_requires(Role.VIEWER)
def dead() -> Response:
    """A page of dead deliveries, newest first (``?endpoint=`` for one endpoint)."""
    parked = queries.dead_letters(
        store(),
        request.args.get("endpoint") or None,
        _scope(),
        after=_cursor(),
        limit=_limit(),
    )
    if not _account().sees_personal_data:
        for item in parked.items:
            item["last_error"] = mask_text(item["last_error"])
    return _page(parked, "dead", plain(parked.items))


@blueprint.get("/quarantine")
@api_requires(Role.VIEWER)
def quarantine() -> ResponseReturnValue:
    """A page of refused inputs, newest first (``?channel=``); region-wide accounts only."""
    if not _account().region_wide:
        return problem(403, "region-only", "the quarantine is shown to region-wide accounts only")
    limit = _limit()
    rows = quarantined(
        store(), request.args.get("channel") or None, limit=limit + 1, after=_cursor()
    )
    kept = page_of(rows, limit, quarantine_cursor)
    masked = not _account().sees_personal_data
    items = [
        {**plain(item), "reason": mask_text(item.reason) if masked else item.reason}
        for item in kept.items
    ]
    return _page(kept, "quarantine", items)


@blueprint.post("/dead/<delivery_id>/replay")
@api_requires(Role.OPERATOR)
def replay(delivery_id: str) -> ResponseReturnValue:
    """Send one dead delivery again, once; 409 if it is no longer dead."""
    reason = _reason()
    outcome = OperatorActions(store(), settings(), _account()).replay(delivery_id, reason)
    if not outcome.replayed:
        return problem(409, "not-dead", f"delivery {delivery_id} is not dead; left as it is")
    return jsonify(plain(outcome))


@blueprint.post("/endpoints/<name>/pause")
@api_requires(Role.OPERATOR)
def pause(name: str) -> Response:
    """Stop attempting deliveries to the endpoint until resumed."""
    OperatorActions(store(), settings(), _account()).pause(name, _reason())
    return jsonify({"endpoint": name, "circuit": "paused"})


@blueprint.post("/endpoints/<name>/resume")
@api_requires(Role.OPERATOR)
def resume(name: str) -> Response:
    """Attempt deliveries to the endpoint again."""
    OperatorActions(store(), settings(), _account()).resume(name)
    return jsonify({"endpoint": name, "circuit": "closed"})


@blueprint.get("/alerts")
@api_requires(Role.VIEWER)
def alerts() -> Response:
    """The alert log, ongoing alerts first."""
    account = _account()
    alerts = [alert_entry(item, account) for item in alert_log(store(), scope=_scope())]
    return jsonify({"alerts": plain(alerts)})


@blueprint.get("/actions")
@api_requires(Role.VIEWER)
def actions() -> Response:
    """The newest operator actions from the audit log."""
    return jsonify({"actions": plain(queries.operator_actions(store(), scope=_scope()))})


def _reason() -> str:
    body = request.get_json(silent=True) or {}
    reason = str(body.get("reason", "") if isinstance(body, dict) else "").strip()
    if not reason:
        raise _BadRequest("reason-required", 'say why in the JSON body: {"reason": "..."}')
    return reason
