"""The JSON API behind the dashboard, described in ``openapi.yaml`` (served at /api/openapi.json).

Every route needs a logged-in person (the dashboard's session) or a bearer token:
viewers read, operators also replay and pause. Errors are RFC 7807 problem documents.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from hub.errors import HubError
from hub.store.queries import status_counts
from hub.web import problem
from monitoring import queries
from monitoring.actions import OperatorActions
from monitoring.alerts import alert_log
from monitoring.auth import Account, Role, api_requires, current_account
from monitoring.context import endpoint_names, office_names, settings, store
from monitoring.masking import mask_text
from monitoring.presenting import endpoint_row, office_row, plain, trace_document
from monitoring.queues import queue_depths

blueprint = Blueprint("monitoring_api", __name__, url_prefix="/api")


def _account() -> Account:
    account = current_account()
    assert account is not None  # the route's guard let only accounts through
    return account


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
    return jsonify({"messages_by_status": status_counts(store())})


@blueprint.get("/receipts/late")
@api_requires(Role.VIEWER)
def late_receipts() -> Response:
    """Deliveries whose awaited receipt (e.g. a UPD) is overdue."""
    late = [plain(dataclasses.asdict(item)) for item in store().late_receipts()]
    return jsonify({"late": late, "count": len(late)})


@blueprint.get("/messages/<message_id>")
@api_requires(Role.VIEWER)
def message(message_id: str) -> ResponseReturnValue:
    """One message's trace: hops, deliveries and attempts, signatures, receipts, audit."""
    found = queries.trace(store(), message_id)
    if found is None:
        return problem(
            404, "not-found", f"the hub has never received a message with id {message_id}"
        )
    return jsonify(trace_document(found, _account()))


@blueprint.get("/search")
@api_requires(Role.VIEWER)
def search() -> Response:
    """Messages by envelope id, case id or the sender's document id."""
    results = queries.find_messages(store(), request.args.get("q", ""))
    return jsonify({"results": plain(results), "count": len(results)})


@blueprint.get("/overview")
@api_requires(Role.VIEWER)
def overview() -> Response:
    """Documents in and out over the window, and the throughput and latency series."""
    window = _window()
    return jsonify(
        {
            "overview": plain(queries.overview(store(), window)),
            "series": plain(queries.series(store(), window)),
        }
    )


@blueprint.get("/endpoints")
@api_requires(Role.VIEWER)
def endpoints() -> Response:
    """Every endpoint's backlog, error rate, oldest waiting document and health."""
    figures = queries.endpoint_figures(store(), _window(), endpoint_names())
    rows = queries.sort_rows(figures, request.args.get("sort", ""))
    return jsonify({"endpoints": [endpoint_row(item, _account()) for item in rows]})


@blueprint.get("/offices")
@api_requires(Role.VIEWER)
def offices() -> Response:
    """Every office's traffic and backlog over its endpoints."""
    window = _window()
    figures = queries.endpoint_figures(store(), window, endpoint_names())
    rows = queries.office_figures(store(), window, figures, office_names())
    rows = queries.sort_rows(rows, request.args.get("sort", ""))
    return jsonify({"offices": [office_row(item) for item in rows]})


@blueprint.get("/queues")
@api_requires(Role.VIEWER)
def queues() -> ResponseReturnValue:
    """Depth of every queue of the hub, read from RabbitMQ."""
    hub_settings = settings()
    try:
        depths = queue_depths(
            hub_settings.amqp_url,
            hub_settings.queue_prefix,
            endpoint_names(),
            hub_settings.retry_delays_s,
        )
    except HubError as exc:
        return problem(503, "broker-unavailable", exc.reason)
    return jsonify({"queues": plain(depths)})


@blueprint.get("/dead")
@api_requires(Role.VIEWER)
def dead() -> Response:
    """Dead deliveries, newest first (``?endpoint=`` for one endpoint)."""
    parked = queries.dead_letters(store(), request.args.get("endpoint") or None)
    if not _account().sees_personal_data:
        for item in parked:
            item["last_error"] = mask_text(item["last_error"])
    return jsonify({"dead": plain(parked), "count": len(parked)})


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
    return jsonify({"alerts": plain(alert_log(store()))})


@blueprint.get("/actions")
@api_requires(Role.VIEWER)
def actions() -> Response:
    """The newest operator actions from the audit log."""
    return jsonify({"actions": plain(queries.operator_actions(store()))})


def _reason() -> str:
    body = request.get_json(silent=True) or {}
    reason = str(body.get("reason", "") if isinstance(body, dict) else "").strip()
    if not reason:
        raise _BadRequest("reason-required", 'say why in the JSON body: {"reason": "..."}')
    return reason
