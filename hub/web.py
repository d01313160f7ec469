"""The hub's HTTP application: the core health routes, plus whatever ``hub.web`` plugins add."""

from __future__ import annotations

from importlib.metadata import entry_points

from flask import Flask, Response, jsonify

from hub.settings import Settings
from hub.store.repository import Store

WEB_GROUP = "hub.web"


def problem(status: int, code: str, detail: str) -> tuple[Response, int]:
    """An RFC 7807 problem document whose ``type`` (``urn:hub:problem:<code>``) callers act on."""
    response = jsonify(
        {
            "type": f"urn:hub:problem:{code}",
            "title": code.replace("-", " "),
            "status": status,
            "detail": detail,
        }
    )
    response.mimetype = "application/problem+json"
    return response, status


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the Flask app; plugins registered under ``hub.web`` add their routes."""
    app = Flask("hub")
    app.config["HUB_SETTINGS"] = settings
    app.config["HUB_STORE"] = store or Store.from_url(settings.database_url)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    for entry_point in entry_points(group=WEB_GROUP):
        entry_point.load()(app)
    return app
