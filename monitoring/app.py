"""The monitoring routes plugged into the hub's Flask app (entry point ``hub.web``)."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hub.broker.connection import close_quietly, connect
from hub.errors import HubError
from hub.settings import Settings
from hub.store.queries import message_trace, status_counts
from hub.store.repository import Store
from hub.web import problem
from monitoring.metrics import StoreCollector

blueprint = Blueprint("monitoring", __name__)


def register(app: Flask) -> None:
    """Add the monitoring routes to ``app``."""
    app.register_blueprint(blueprint)


def _store() -> Store:
    store: Store = current_app.config["HUB_STORE"]
    return store


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when both the database and the broker answer."""
    settings: Settings = current_app.config["HUB_SETTINGS"]
    problems: dict[str, str] = {}
    try:
        status_counts(_store())
    except HubError as exc:
        problems["database"] = exc.reason
    try:
        close_quietly(connect(settings.amqp_url))
    except HubError as exc:
        problems["broker"] = exc.reason
    status = 503 if problems else 200
    return jsonify({"ready": not problems, "problems": problems}), status


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of the store's figures."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(_store(), current_app.config["HUB_SETTINGS"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@blueprint.get("/api/summary")
def summary() -> Response:
    """Message counts by status."""
    return jsonify({"messages_by_status": status_counts(_store())})


@blueprint.get("/api/receipts/late")
def late_receipts() -> Response:
    """Deliveries whose awaited receipt (e.g. a UPD) is overdue."""
    late = [dataclasses.asdict(item) for item in _store().late_receipts()]
    return jsonify({"late": late, "count": len(late)})


@blueprint.get("/api/messages/<message_id>")
def message(message_id: str) -> tuple[Response, int]:
    """One message's trace: deliveries and attempts."""
    trace = message_trace(_store(), message_id)
    if trace is None:
        return problem(
            404, "not-found", f"the hub has never received a message with id {message_id}"
        )
    return jsonify(trace), 200
