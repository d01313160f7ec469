"""The hub's HTTP application: the core health routes, plus whatever ``hub.web`` plugins add."""

from __future__ import annotations

import hashlib
from importlib.metadata import entry_points

from flask import Flask, Request, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from hub.errors import HubError
from hub.identity import Client, ClientRegistry
from hub.logging import get_logger
from hub.region import Region
from hub.reload import RegionSource
from hub.settings import Settings
from hub.store.quarantine import (
    UNAUTHENTICATED_KEPT_BODY_BYTES,
    BodySample,
    RefusedInput,
    quarantine,
    sample_stream,
)
from hub.store.repository import Store
from hub.tls import peer_certificate_sha256

WEB_GROUP = "hub.web"
KIB = 1024
MIB = 1024 * KIB
CLIENTS_EXTENSION = "hub_clients"
REGION_EXTENSION = "hub_region"
# Sent with every answer of the hub's app, whichever door: the dashboard loads scripts and
# styles only from its own static files (no inline ones), and no other site may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# No inbound document is larger (ePUAP caps filings far below this); a bigger body is
# refused before it is read into memory.
MAX_REQUEST_BYTES = 64 * MIB
# What a door takes when it carries no documents: notifications, case steps, forms.
DEFAULT_REQUEST_BYTES = 64 * KIB
# Every door's largest body, by path prefix (the longest matching prefix wins; a path
# none names takes DEFAULT_REQUEST_BYTES). One table of the hub's URL space rather than
# a decorator per view, so every door's bound reads in one place and a door added
# without thought is bounded small. A body over its door's bound is refused 413 before
# it is read.
REQUEST_BODY_LIMITS: dict[str, int] = {
    "/api/documents": MAX_REQUEST_BYTES,  # the domain intake: offices' documents
    # The ESP: an ePUAP filing of up to 20 MiB travels base64-encoded (4/3) in SOAP, so
    # the door lets such a filing reach the ESP, which answers it with its own fault.
    "/epuap/esp": 32 * MIB,
    "/edoreczenia/": 64 * KIB,  # the e-Doręczenia webhook: one MessageStatement
    "/api/cases/": 64 * KIB,  # the case API: a status step
}
NO_BODY = BodySample(start=b"", size=0, sha256=hashlib.sha256(b"").hexdigest())
# A 401-type refusal: the caller offered no valid credential, so it is nobody known.
UNAUTHENTICATED_STATUS = 401

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
    """Quarantine the current request with its reason and answer it with a problem.

    A 401 refusal (no valid credential) keeps only the body's digest, size and start.
    """
    authenticated = status != UNAUTHENTICATED_STATUS
    quarantine_request(channel, code, detail, authenticated=authenticated)
    return problem(status, code, detail)


def quarantine_request(
    channel: str,
    code: str,
    reason: str,
    *,
    with_body: bool = True,
    authenticated: bool = True,
) -> None:
    """Keep the current request as refused input; a store outage is logged, not raised.

    The caller has its answer either way: the refusal must not turn into a 500 because
    the quarantine could not be written.

    Args:
        channel: the door that refused it.
        code: the error code answered.
        reason: why it was refused.
        with_body: False keeps no body at all (one too large to read).
        authenticated: False for a caller with no valid credential: of its body only
            the digest, the size and the first 4 KiB are kept, read without holding
            the whole body in memory.
    """
    store: Store = current_app.config["HUB_STORE"]
    sample = _body_sample(with_body=with_body, authenticated=authenticated)
    refused = RefusedInput(
        channel=channel,
        code=code,
        reason=reason,
        body=sample.start,
        content_type=request.content_type,
        remote_address=request.remote_addr,
        authenticated=authenticated,
        size=sample.size,
        sha256=sample.sha256,
    )
    try:
        quarantine(store, refused)
    except HubError as exc:
        log.warning("quarantine_failed", channel=channel, code=code, reason=exc.reason)
    log.info("input_quarantined", channel=channel, code=code, reason=reason)


def _body_sample(*, with_body: bool, authenticated: bool) -> BodySample:
    if not with_body:
        return NO_BODY
    if authenticated:
        body = request.get_data(cache=True)
        return BodySample(start=body, size=len(body), sha256=hashlib.sha256(body).hexdigest())
    # The view may have read the body already (then this is werkzeug's cached copy);
    # otherwise it is streamed through the digest, never held whole for a stranger.
    return sample_stream(request._get_stream_for_parsing(), UNAUTHENTICATED_KEPT_BODY_BYTES)


def request_body_limit(path: str) -> int:
    """The largest body the door at ``path`` takes (``REQUEST_BODY_LIMITS``).

    Args:
        path: the request's path.

    Returns:
        The limit in bytes of the longest matching prefix, else ``DEFAULT_REQUEST_BYTES``.
    """
    matching = [prefix for prefix in REQUEST_BODY_LIMITS if path.startswith(prefix)]
    if not matching:
        return DEFAULT_REQUEST_BYTES
    return REQUEST_BODY_LIMITS[max(matching, key=len)]


def _bound_request_body() -> None:
    # Flask 3.1 takes a per-request limit: werkzeug then stops a chunked body at it too.
    limit = request_body_limit(request.path)
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge


def region_source() -> RegionSource:
    """The app's one reloading region: every door reads the catalogue through it."""
    source: RegionSource = current_app.extensions[REGION_EXTENSION]
    return source


def current_region() -> Region:
    """The region as every door of this process sees it now (reloaded when it changes)."""
    return region_source().current()


def client_registry() -> ClientRegistry:
    """The app's client registry (every door's one source of who is calling)."""
    registry: ClientRegistry = current_app.extensions[CLIENTS_EXTENSION]
    return registry


def bearer_token(incoming: Request | None = None) -> str:
    """The ``Authorization: Bearer`` token of ``incoming`` (default: this request), or ''."""
    scheme, _, token = (incoming or request).headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def calling_client(token: str | None = None) -> Client | None:
    """The client the request's credential names.

    Args:
        token: a secret the door found elsewhere than the ``Authorization`` header.

    Returns:
        The client of the bearer token (or ``token``) when one is offered, else the
        client of the verified TLS client certificate (mTLS), else None.
    """
    offered = bearer_token() if token is None else token
    if offered:
        return client_registry().authenticate(offered)
    fingerprint = peer_certificate_sha256(request.environ)
    return None if fingerprint is None else client_registry().by_certificate(fingerprint)


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


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    """Build the Flask app; plugins registered under ``hub.web`` add their routes."""
    app = Flask("hub")
    app.config["HUB_SETTINGS"] = settings
    app.config["HUB_STORE"] = store or Store.from_url(settings.database_url)
    app.extensions[CLIENTS_EXTENSION] = ClientRegistry(app.config["HUB_STORE"])
    # One region for the whole process: a door that loaded its own copy would refuse an
    # office the others (and the workers) already take after a reload.
    app.extensions[REGION_EXTENSION] = RegionSource(settings.region_path, settings.region_reload_s)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.before_request(_bound_request_body)
    app.after_request(_add_security_headers)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_error: RequestEntityTooLarge) -> tuple[Response, int]:
        detail = f"the request is larger than {request_body_limit(request.path)} bytes"
        if request.content_length is not None:
            detail += f" (it declares {request.content_length})"
        quarantine_request(request.path, "too-large", detail, with_body=False)
        return problem(413, "too-large", detail)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    for entry_point in entry_points(group=WEB_GROUP):
        entry_point.load()(app)
    return app
