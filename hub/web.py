"""The hub's HTTP application: the core health routes, plus whatever ``hub.web`` plugins add."""

from __future__ import annotations

from importlib.metadata import entry_points

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from hub.errors import HubError
from hub.identity import Client, ClientRegistry
from hub.logging import get_logger
from hub.settings import Settings
from hub.store.quarantine import RefusedInput, quarantine
from hub.store.repository import Store

WEB_GROUP = "hub.web"
CLIENTS_EXTENSION = "hub_clients"
# No inbound document is larger (ePUAP caps filings far below this); a bigger body is
# refused before it is read into memory.
MAX_REQUEST_BYTES = 64 * 1024 * 1024

log = get_logger(__name__)


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


def refuse(channel: str, status: int, code: str, detail: str) -> tuple[Response, int]:
    """Quarantine the current request with its reason and answer it with a problem."""
    quarantine_request(channel, code, detail)
    return problem(status, code, detail)


def quarantine_request(channel: str, code: str, reason: str, *, with_body: bool = True) -> None:
    """Keep the current request as refused input; a store outage is logged, not raised.

    The caller has its answer either way: the refusal must not turn into a 500 because
    the quarantine could not be written.
    """
    store: Store = current_app.config["HUB_STORE"]
    refused = RefusedInput(
        channel=channel,
        code=code,
        reason=reason,
        body=request.get_data(cache=True) if with_body else b"",
        content_type=request.content_type,
        remote_address=request.remote_addr,
    )
    try:
        quarantine(store, refused)
    except HubError as exc:
        log.warning("quarantine_failed", channel=channel, code=code, reason=exc.reason)
    log.info("input_quarantined", channel=channel, code=code, reason=reason)


def client_registry() -> ClientRegistry:
    """The app's client registry (every door's one source of who is calling)."""
    registry: ClientRegistry = current_app.extensions[CLIENTS_EXTENSION]
    return registry


def bearer_token() -> str:
    """The request's ``Authorization: Bearer`` token, or an empty string."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def calling_client(token: str | None = None) -> Client | None:
    """The client the request's credential names (its bearer token, or ``token``)."""
    return client_registry().authenticate(bearer_token() if token is None else token)


def admit(
    channel: str, api: str, token: str | None = None, credential: str = "bearer token"
) -> Client | tuple[Response, int]:
    """The calling client if it may call ``api``; else the refusal to answer, quarantined.

    Every inbound HTTP door starts here, so who is calling is decided in one place: 401
    ``unauthorized`` without a valid credential, 403 ``forbidden-api`` for a client that
    may not call this API. A door whose caller cannot send a header passes the ``token``
    it found elsewhere, and names that ``credential`` for the refusal.
    """
    client = calling_client(token)
    if client is None:
        return refuse(channel, 401, "unauthorized", f"a valid {credential} is required")
    if not client.may_call(api):
        detail = f"client {client.name} may not call the {api} API"
        return refuse(channel, 403, "forbidden-api", detail)
    return client


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the Flask app; plugins registered under ``hub.web`` add their routes."""
    app = Flask("hub")
    app.config["HUB_SETTINGS"] = settings
    app.config["HUB_STORE"] = store or Store.from_url(settings.database_url)
    app.extensions[CLIENTS_EXTENSION] = ClientRegistry(app.config["HUB_STORE"])
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> tuple[Response, int]:
        detail = f"the request is larger than {MAX_REQUEST_BYTES} bytes"
        quarantine_request(request.path, "too-large", detail, with_body=False)
        return problem(413, "too-large", detail)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    for entry_point in entry_points(group=WEB_GROUP):
        entry_point.load()(app)
    return app
