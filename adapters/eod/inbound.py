"""The REST intake where an office's domain systems (EOD first) hand documents to the hub.

``POST /api/documents`` with the document as the body and these headers:

- ``Authorization: Bearer <token>``: the calling system's client token (``hub client
  add``; or its client certificate over mTLS). The client decides who speaks: the
  document's office is the office the client acts for, its source one of the client's
  sources;
- ``Content-Type``: an XML type (the document type is its root's namespace), or
  ``application/json`` with ``X-Hub-Document-Type`` naming its type (a domain system's
  own JSON, e.g. a tax decision, which a route maps into a letter);
- ``X-Hub-Source`` (needed only when the client has several sources): which of them
  speaks; another is refused 403 ``wrong-source``;
- ``X-Hub-Office`` (optional): if sent, it must be the client's office, or 403
  ``wrong-office``;
- ``Idempotency-Key``: the caller's id for this document, its own (scoped to the
  client): the same key with the same body returns the first answer and stores nothing
  twice; with another body it is 409 ``idempotency-conflict``;
- ``X-Hub-Correlation-ID`` (optional): the case the document belongs to, which must be
  a case of the client's office (any other, or none, is 404 ``case-not-found``);
- ``X-Hub-Forward-To`` (optional): another office of the catalogue that takes the
  document over (a gmina forwarding a case to its powiat, a city office to one of its
  municipal units); the document is routed to that office's systems and the case
  (``X-Hub-Correlation-ID``, which must be the caller's office's) moves with it, its
  history saying from where to where;
- ``X-Hub-Header-<name>`` (optional): route headers for the document, only those of
  ``ROUTE_HEADERS``:

  ============================  =========================================================
  ``epuap-recipient``           the citizen's ePUAP mailbox a decision is sent to
  ``edoreczenia-recipients``    e-Doręczenia addresses (ADE), comma-separated
  ``subject``                   the subject of the letter sent through e-Doręczenia
  ``filename``                  the file name the document travels under
  ``finance-kind``              what a finance document is (invoice, correction, ...)
  ``ksef-number``               the KSeF number of an invoice KSeF handed over
  ``service``                   the catalogue service the document is filed under
  ============================  =========================================================

  A header the hub writes itself (``hub.envelope.RESERVED_HEADERS``: signature checks,
  the party, where a case was forwarded from, its deadline, the signer, ``hub-*``) is
  refused 400 ``reserved-header``; any other name 400 ``header-not-allowed``.

The answer is ``202 {"envelope_id", "outcome"}`` once the document is stored; errors
are RFC 7807 problem documents whose ``type`` a caller can act on. Every refusal is
quarantined and stores no message, except a document that could not be read or routed,
which is kept as a rejected message under its idempotency key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from hub.envelope import Address, Envelope, is_reserved_header
from hub.errors import CaseNotFound, HubError, MalformedDocument
from hub.identity import INTAKE, Client
from hub.inbound import accept_into
from hub.routing import routes_for
from hub.states import MessageStatus
from hub.store.repository import FORWARDED_FROM, Store, StoredInbound
from hub.web import admit, current_region, problem, refuse
from hub.xml import parse_document, root_namespace

INTAKE_PATH = "/api/documents"
CHANNEL = "domain-intake"
FORWARD_HEADER = "X-Hub-Forward-To"
DOCUMENT_TYPE_HEADER = "X-Hub-Document-Type"
JSON = "application/json"
HEADER_PREFIX = "X-Hub-Header-"
ROUTE_HEADERS = frozenset(
    {
        "epuap-recipient",
        "edoreczenia-recipients",
        "subject",
        "filename",
        "finance-kind",
        "ksef-number",
        "service",
    }
)
UNROUTABLE = "unroutable"

blueprint = Blueprint("domain_intake", __name__)
Answer = tuple[Response, int]


@dataclass(frozen=True, slots=True)
class Submission:
    """What an authenticated caller hands over: who speaks, for which office, what."""

    client: Client
    office: str
    source: str
    key: str
    body: bytes

    @property
    def external_id(self) -> str:
        """The document's identity in the store: the client's own idempotency key."""
        return f"intake:{self.client.name}:{self.key}"

    @property
    def body_sha256(self) -> str:
        """Hex SHA-256 of the body, compared when an idempotency key comes again."""
        return hashlib.sha256(self.body).hexdigest()


def register(app: Flask) -> None:
    """Plug the intake into the hub's HTTP app (entry point ``hub.web``)."""
    app.register_blueprint(blueprint)


@blueprint.post(INTAKE_PATH)
def take_document() -> Answer:
    """Store one document from a domain system; answer once it is stored."""
    caller = admit(CHANNEL, INTAKE)
    if not isinstance(caller, Client):
        return caller
    submission = _submission(caller)
    if not isinstance(submission, Submission):
        return submission
    earlier = _earlier_answer(submission)
    if earlier is not None:
        return earlier
    return _store(submission)


def _submission(client: Client) -> Submission | Answer:
    refusal = _header_refusal(client) or _forward_refusal(client) or _media_type_refusal()
    if refusal is not None:
        return refusal
    source = request.headers.get("X-Hub-Source") or next(iter(client.sources))
    assert client.office is not None  # the registry gives the intake to office clients only
    return Submission(
        client, client.office, source, request.headers["Idempotency-Key"], request.get_data()
    )


def _header_refusal(client: Client) -> Answer | None:
    if not request.headers.get("Idempotency-Key"):
        return refuse(CHANNEL, 400, "missing-header", "the Idempotency-Key header is required")
    office = request.headers.get("X-Hub-Office")
    if office and office != client.office:
        detail = f"client {client.name} acts for office {client.office}, not {office}"
        return refuse(CHANNEL, 403, "wrong-office", detail)
    source = request.headers.get("X-Hub-Source")
    if source and not client.may_speak_as(source):
        detail = f"client {client.name} speaks as {', '.join(sorted(client.sources))}, not {source}"
        return refuse(CHANNEL, 403, "wrong-source", detail)
    if not source and len(client.sources) > 1:
        detail = "the client has several sources: the X-Hub-Source header must name one"
        return refuse(CHANNEL, 400, "missing-header", detail)
    return _route_header_refusal()


def _route_header_refusal() -> Answer | None:
    for name in _route_headers():
        if is_reserved_header(name):
            detail = f"the header {name!r} is written by the hub only"
            return refuse(CHANNEL, 400, "reserved-header", detail)
        if name not in ROUTE_HEADERS:
            allowed = ", ".join(sorted(ROUTE_HEADERS))
            detail = f"the header {name!r} is not one a caller may set: {allowed}"
            return refuse(CHANNEL, 400, "header-not-allowed", detail)
    return None


def _forward_refusal(client: Client) -> Answer | None:
    forward_to = request.headers.get(FORWARD_HEADER)
    if forward_to is None:
        return None
    if forward_to not in current_region().offices:
        detail = f"office {forward_to!r} to forward to is not in the catalogue"
        return refuse(CHANNEL, 404, "unknown-office", detail)
    if forward_to == client.office:
        detail = "a document is forwarded to another office, not to its own"
        return refuse(CHANNEL, 422, "forward-to-self", detail)
    if not request.headers.get("X-Hub-Correlation-ID"):
        detail = "a forwarded document names the case it hands over (X-Hub-Correlation-ID)"
        return refuse(CHANNEL, 400, "missing-header", detail)
    return None


def _media_type_refusal() -> Answer | None:
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


def _earlier_answer(submission: Submission) -> Answer | None:
    """The first answer again for a key seen before; 409 if the body differs."""
    stored = _store_of().inbound_by_external_id(submission.external_id)
    if stored is None:
        return None
    if stored.body_sha256 != submission.body_sha256:
        detail = (
            f"the idempotency key {submission.key!r} was used for another document "
            f"({stored.message_id})"
        )
        return refuse(CHANNEL, 409, "idempotency-conflict", detail)
    answer = _answer_for(stored)
    answer[0].headers["Idempotent-Replayed"] = "true"
    return answer


def _answer_for(stored: StoredInbound) -> Answer:
    if stored.status != MessageStatus.REJECTED.value:
        return jsonify({"envelope_id": stored.message_id, "outcome": "accepted"}), 202
    reason = stored.reason or ""
    if reason.startswith(UNROUTABLE):
        return problem(422, UNROUTABLE, reason)
    return problem(400, "malformed-document", reason)


def _store(submission: Submission) -> Answer:
    envelope, reason = _envelope(submission)
    if reason is None and not routes_for(current_region(), envelope):
        reason = (
            f"{UNROUTABLE}: no route takes {envelope.document_type!r} from {submission.source} "
            f"for office {envelope.destination.office}"
        )
    correlation_named = bool(request.headers.get("X-Hub-Correlation-ID"))
    try:
        accept_into(_store_of())(
            envelope,
            external_id=submission.external_id,
            rejected_reason=reason,
            case_owner=submission.office if correlation_named else None,
        )
    except CaseNotFound:
        detail = f"no case {envelope.correlation_id} for this caller"
        return refuse(CHANNEL, 404, "case-not-found", detail)
    except HubError as exc:
        return problem(503, "store-unavailable", f"the document cannot be stored now: {exc.reason}")
    stored = _store_of().inbound_by_external_id(submission.external_id)
    if stored is None:  # only if the row vanished between the commit and this read
        return problem(503, "store-unavailable", "the document was stored but cannot be read")
    if stored.body_sha256 != submission.body_sha256:  # a concurrent twin won the key
        return _earlier_answer(submission) or problem(409, "idempotency-conflict", "")
    return _answer_for(stored)


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


def _route_headers() -> dict[str, str]:
    return {
        name[len(HEADER_PREFIX) :].lower(): value
        for name, value in request.headers.items()
        if name.lower().startswith(HEADER_PREFIX.lower())
    }


def _envelope(submission: Submission) -> tuple[Envelope, str | None]:
    document_type, reason = _document_type(submission.body)
    headers = _route_headers()
    forward_to = request.headers.get(FORWARD_HEADER)
    if forward_to:
        headers[FORWARDED_FROM] = submission.office
    envelope = Envelope(
        document_type=document_type,
        source=submission.source,
        destination=Address(forward_to or submission.office),
        body=submission.body,
        content_type=request.mimetype or "application/xml",
        correlation_id=request.headers.get("X-Hub-Correlation-ID", ""),
        headers=headers,
    )
    return envelope, reason


def _store_of() -> Store:
    store: Store = current_app.config["HUB_STORE"]
    return store
