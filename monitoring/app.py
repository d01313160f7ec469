"""The monitoring routes plugged into the hub's Flask app (entry point ``hub.web``).

Machines' routes stay open: ``/healthz`` (the core app), ``/readyz`` and ``/metrics``.
Everything else needs a person logged in (the dashboard under ``/dashboard``, its JSON
API under ``/api``) or, for the API, a bearer token; see :mod:`monitoring.auth`.
State-changing requests made with a session cookie must carry the CSRF token.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from hub.broker.connection import close_quietly, connect
from hub.errors import HubError
from hub.settings import Settings
from hub.store.queries import status_counts
from hub.web import problem
from monitoring import api, dashboard
from monitoring.auth import bearer_account, current_account, init_auth
from monitoring.context import region, settings, store
from monitoring.i18n import language, language_url, this_page_with, translate
from monitoring.metrics import StoreCollector

blueprint = Blueprint("monitoring", __name__)
csrf = CSRFProtect()
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The blueprints whose forms and JSON posts come from a browser holding the session.
CSRF_GUARDED = frozenset({"dashboard", "monitoring_api", "auth"})


def register(app: Flask) -> None:
    """Add the health and metrics routes, the dashboard and its JSON API to ``app``."""
    settings: Settings = app.config["HUB_SETTINGS"]
    app.secret_key = settings.dashboard_secret_key or secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        # Only the dashboard's own routes check tokens; the intake and the platforms' SOAP
        # and webhook routes on the same app authenticate their callers in their own way.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    init_auth(app, settings)
    app.before_request(_check_csrf)
    app.register_blueprint(blueprint)
    app.register_blueprint(dashboard.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.jinja_env.globals.update(
        t=translate,
        lang=language,
        language_url=language_url,
        this_page_with=this_page_with,
        account=current_account,
    )


def _check_csrf() -> None:
    if request.method not in STATE_CHANGING or request.blueprint not in CSRF_GUARDED:
        return
    # A browser never adds an Authorization header on its own, so a request carrying a
    # valid bearer token cannot be forged by another site: only cookie requests need it.
    if bearer_account(request) is None:
        csrf.protect()


def _csrf_refused(error: CSRFError) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return problem(400, "csrf-refused", str(error.description))
    return render_template("message.html", text=str(error.description)), 400


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when both the database and the broker answer."""
    problems: dict[str, str] = {}
    try:
        status_counts(store())
    except HubError as exc:
        problems["database"] = exc.reason
    try:
        close_quietly(connect(settings().amqp_url))
    except HubError as exc:
        problems["broker"] = exc.reason
    status = 503 if problems else 200
    return jsonify({"ready": not problems, "problems": problems}), status


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of the store's and the broker's figures."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(store(), settings(), region()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
