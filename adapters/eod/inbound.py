"""The REST intake where an office's domain systems (EOD first) hand documents to the hub.

``POST /api/documents`` with the document as the body and these headers:

- ``Content-Type``: an XML type (the document type is its root's namespace), or
  ``application/json`` with ``X-Hub-Document-Type`` naming its type (a domain system's
  own JSON, e.g. a tax decision, which a route maps into a letter);

- ``Authorization: Bearer <token>``: the calling system's token (setting ``intake_token``);
- ``X-Hub-Source``: the calling system (``eod``, ``tax``, ...), which routes match on;
- ``X-Hub-Office``: the office the document comes from (its id in the catalogue);
- ``Idempotency-Key``: the caller's id for this document; the same key again returns
  the first answer and stores nothing twice;
- ``X-Hub-Correlation-ID`` (optional): the case the document belongs to;
- ``X-Hub-Forward-To`` (optional): another office of the catalogue that takes the
  document over (a gmina forwarding a case to its powiat, a city office to one of its
  municipal units); the document is routed to that office's systems and the case
  (``X-Hub-Correlation-ID``) moves with it, its history saying from where to where;
- ``X-Hub-Header-<name>`` (optional): envelope headers for the route, e.g.
  ``X-Hub-Header-epuap-recipient: /jan-kowalski/skrytka``.

The answer is ``202 {"envelope_id", "outcome"}`` once the document is stored; errors
are RFC 7807 problem documents whose ``type`` a caller can act on.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from hub.envelope import Address, Envelope
from hub.errors import HubError, MalformedDocument
from hub.inbound import accept_into
from hub.region import load_region
from hub.routing import routes_for
from hub.settings import Settings
from hub.store.repository import FORWARDED_FROM, Store
from hub.web import problem, refuse
from hub.xml import parse_document, root_namespace

INTAKE_PATH = "/api/documents"
CHANNEL = "domain-intake"
FORWARD_HEADER = "X-Hub-Forward-To"
DOCUMENT_TYPE_HEADER = "X-Hub-Document-Type"
JSON = "application/json"
HEADER_PREFIX = "X-Hub-Header-"

blueprint = Blueprint("domain_intake", __name__)


def register(app: Flask) -> None:
    """Plug the intake into the hub's HTTP app (entry point ``hub.web``)."""
    settings: Settings = app.config["HUB_SETTINGS"]
    region = load_region(settings.region_path)
    app.extensions["domain_intake"] = {
        "offices": set(region.offices),
        "region": region,
        "token": settings.intake_token,
    }
    app.register_blueprint(blueprint)


@blueprint.post(INTAKE_PATH)
def take_document() -> tuple[Response, int]:
    """Store one document from a domain system; answer once it is stored."""
    config: dict[str, Any] = current_app.extensions["domain_intake"]
    refusal = _refusal(config)
    if refusal is not None:
        return refusal
    store: Store = current_app.config["HUB_STORE"]
    source = request.headers["X-Hub-Source"]
    external_id = f"intake:{source}:{request.headers['Idempotency-Key']}"
    envelope, reason = _envelope(source, request.get_data())
    unroutable = reason is None and not routes_for(config["region"], envelope)
    if unroutable:
        reason = (
            f"unroutable: no route takes {envelope.document_type!r} from {source} "
            f"for office {envelope.destination.office}"
        )
    try:
        outcome = accept_into(store)(envelope, external_id=external_id, rejected_reason=reason)
        envelope_id = store.message_id_by_external_id(external_id) or str(envelope.envelope_id)
    except HubError as exc:
        return problem(503, "store-unavailable", f"the document cannot be stored now: {exc.reason}")
    if unroutable:
        return problem(422, "unroutable", reason or "")
    if reason is not None:
        return problem(400, "malformed-document", reason)
    return jsonify({"envelope_id": envelope_id, "outcome": outcome}), 202


def _refusal(config: dict[str, Any]) -> tuple[Response, int] | None:
    token = config["token"]
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not token or not hmac.compare_digest(offered.encode(), token.encode()):
        return refuse(CHANNEL, 401, "unauthorized", "a valid bearer token is required")
    for name in ("X-Hub-Source", "X-Hub-Office", "Idempotency-Key"):
        if not request.headers.get(name):
            return refuse(CHANNEL, 400, "missing-header", f"the {name} header is required")
    if request.headers["X-Hub-Office"] not in config["offices"]:
        office = request.headers["X-Hub-Office"]
        detail = f"office {office!r} is not in the catalogue"
        return refuse(CHANNEL, 404, "unknown-office", detail)
    return _forward_refusal(config) or _media_type_refusal()


def _forward_refusal(config: dict[str, Any]) -> tuple[Response, int] | None:
    forward_to = request.headers.get(FORWARD_HEADER)
    if forward_to is not None and forward_to not in config["offices"]:
        detail = f"office {forward_to!r} to forward to is not in the catalogue"
        return refuse(CHANNEL, 404, "unknown-office", detail)
    if forward_to == request.headers["X-Hub-Office"]:
        detail = "a document is forwarded to another office, not to its own"
        return refuse(CHANNEL, 422, "forward-to-self", detail)
    return None


def _media_type_refusal() -> tuple[Response, int] | None:
    if request.mimetype == JSON and not request.headers.get(DOCUMENT_TYPE_HEADER):
        detail = f"a JSON document needs the {DOCUMENT_TYPE_HEADER} header naming its type"
        return refuse(CHANNEL, 400, "missing-header", detail)
    if request.mimetype != JSON and not _declares_xml(request.mimetype):
        detail = (
            f"documents are XML or JSON; the request declares {request.mimetype or 'no type'!r}"
        )
        return refuse(CHANNEL, 415, "unsupported-media-type", detail)
    return None


def _declares_xml(mimetype: str) -> bool:
    return mimetype in ("application/xml", "text/xml") or mimetype.endswith("+xml")


def _document_type(body: bytes) -> tuple[str, str | None]:
    """The document's type, and why it cannot be taken (None if it can)."""
    if request.mimetype == JSON:
        try:
            json.loads(body)
        except ValueError as exc:
            return "unparseable", f"malformed-document: not JSON: {exc}"
        return request.headers[DOCUMENT_TYPE_HEADER], None
    try:
        return root_namespace(parse_document(body)), None
    except MalformedDocument as exc:
        return "unparseable", f"{exc.code}: {exc.reason}"


def _envelope(source: str, body: bytes) -> tuple[Envelope, str | None]:
    document_type, reason = _document_type(body)
    headers = {
        name[len(HEADER_PREFIX) :].lower(): value
        for name, value in request.headers.items()
        if name.lower().startswith(HEADER_PREFIX.lower())
    }
    office = request.headers["X-Hub-Office"]
    forward_to = request.headers.get(FORWARD_HEADER)
    if forward_to:
        headers[FORWARDED_FROM] = office
    envelope = Envelope(
        document_type=document_type,
        source=source,
        destination=Address(forward_to or office),
        body=body,
        content_type=request.mimetype or "application/xml",
        correlation_id=request.headers.get("X-Hub-Correlation-ID", ""),
        headers=headers,
    )
    return envelope, reason
