"""Flask app playing an e-Doręczenia service: the UA API, its token endpoint, an admin API.

Interface:

- ``POST /oauth2/token``: OAuth2 client credentials (``grant_type=client_credentials``,
  client id and secret in HTTP Basic or the form); answers ``access_token``,
  ``expires_in`` (configurable), ``scope``. Errors as RFC 6749 (``invalid_client`` 401).
- ``/api/v1/...``: the operations of ``wsdl/edoreczenia/uaapi_3.0.8.1.yaml`` the hub
  uses (see :func:`_register_api`). Every call needs a bearer token issued here and not
  expired (else 401 ``invalid_token``) with the scopes the contract names for the
  operation (else 403 ``insufficient_scope``), and must be valid against the contract
  (else 400 with the contract's ``ErrorInfo`` list, naming what openapi-core found).
  Refusals of understood requests are 400 ``ErrorInfo`` lists too: the contract
  declares no other error status.
- Webhooks: after ``PUT .../message_subscriptions``, each new message for that address
  is posted as a ``MessageStatement`` to ``messageCallbackUrl`` (and each new evidence
  to ``evidenceCallbackUrl``) from a background thread, with a short timeout.
- Evidence documents carry the provider's enveloped XAdES-BES signature; ``GET
  /_sim/identity`` names the signing certificate (and its CA, when known).
- ``/_sim/``: ``GET stats``, ``GET violations``, ``GET identity``, ``POST reset``, ``POST
  faults`` (``{"kind": "http400"|"http401"|"http429"|"http500"|"delay"|"list_twice"|
  "forged_evidence", "times": n, "method": "GET", "path_contains": "/messages",
  "retry_after_s": s, "delay_s": s, "evidence_type": "E.1"}``; ``forged_evidence`` hands
  out the next downloaded evidence, of ``evidence_type`` if given, tampered after signing),
  ``DELETE faults``, ``POST config`` (``token_lifetime_s``, ``task_pending_polls``),
  ``POST tokens/expire``, ``POST messages`` (inject an incoming message:
  ``{"to", "from", "subject", "textBody", "attachments": [{"filename", "contentType",
  "content" (base64)}]}``), ``GET mailboxes/<address>``.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
from flask import Flask, Response, g, jsonify, request

from simulators.edoreczenia.contract import (
    API_PREFIX,
    DECLARED_STATUSES,
    DEFAULT_CONTRACT,
    Contract,
    ContractViolation,
    load_contract,
)
from simulators.edoreczenia.mailboxes import (
    Fault,
    IncomingDocument,
    IssuedToken,
    Notification,
    Refusal,
    SimulatorState,
    StoredMessage,
)

DEFAULT_NOTIFY_TIMEOUT_S = 2.0
EXTENSION_KEY = "edoreczenia_simulator"
_ADDRESS = f"{API_PREFIX}/<eDeliveryAddress>"


class Notifier:
    """Posts webhook notifications from background threads, counting the outcomes."""

    def __init__(self, state: SimulatorState, contract: Contract, timeout_s: float) -> None:
        self._state = state
        self._contract = contract
        self._timeout_s = timeout_s

    def post_all(self, notifications: Iterable[Notification]) -> None:
        """Start posting each notification; return at once."""
        for notification in notifications:
            threading.Thread(target=self._post, args=(notification,), daemon=True).start()

    def _post(self, notification: Notification) -> None:
        violations = self._contract.schema_violations("MessageStatement", notification.body)
        with self._state.lock:
            self._state.response_violations.extend(f"callback: {item}" for item in violations)
        session = requests.Session()
        session.trust_env = False  # loopback callbacks must not go through a proxy
        try:
            answer = session.post(notification.url, json=notification.body, timeout=self._timeout_s)
            delivered = answer.ok
        except requests.RequestException:
            delivered = False
        finally:
            session.close()
        self._state.count("notifications_delivered" if delivered else "notifications_failed")


def create_app(
    state: SimulatorState | None = None,
    *,
    contract_path: Path | str = DEFAULT_CONTRACT,
    validate_responses: bool = False,
    notify_timeout_s: float = DEFAULT_NOTIFY_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Flask:
    """Build the simulator's Flask app.

    Args:
        state: shared state; a fresh one by default (exposed as
            ``app.extensions["edoreczenia_simulator"]``).
        contract_path: the UA API OpenAPI document to enforce.
        validate_responses: also check every answer against the contract, recording
            what breaks it in ``state.response_violations`` (the tests turn this on).
        notify_timeout_s: timeout of each webhook call.
        sleep: how injected delays wait.

    Returns:
        The WSGI app.
    """
    sim_state = state if state is not None else SimulatorState()
    contract = load_contract(Path(contract_path))
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = sim_state
    _register_guard(app, sim_state, contract, sleep)
    if validate_responses:
        _register_response_check(app, sim_state, contract)
    _register_token_endpoint(app, sim_state)
    notifier = Notifier(sim_state, contract, notify_timeout_s)
    _register_api(app, sim_state, notifier)
    _register_admin(app, sim_state, notifier)
    return app


def _register_guard(
    app: Flask, state: SimulatorState, contract: Contract, sleep: Callable[[float], None]
) -> None:
    """Faults, then the token, then the contract, then the scopes: before every API call."""

    @app.before_request
    def guard() -> Response | tuple[Response, int] | None:
        if request.path.startswith("/_sim/"):
            return None
        state.count("requests")
        fault = state.next_fault(request.method, request.path)
        g.list_twice = fault is not None and fault.kind == "list_twice"
        if fault is not None:
            answer = _apply_fault(fault, sleep)
            if answer is not None:
                return answer
        if not request.path.startswith(API_PREFIX + "/") or request.url_rule is None:
            return None
        issued = state.check_token(_bearer_token())
        if issued is None:
            state.count("unauthorized")
            return _unauthorized("the access token is missing, unknown or expired")
        return _check_contract(state, contract, issued)

    @app.errorhandler(Refusal)
    def refused(refusal: Refusal) -> tuple[Response, int]:
        state.count("refused")
        return _error_info(400, refusal.error, refusal.description)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_served(error: Any) -> tuple[Response, int]:
        return _error_info(error.code, "not_served", f"the simulator does not serve {request.path}")


def _check_contract(
    state: SimulatorState, contract: Contract, issued: IssuedToken
) -> tuple[Response, int] | None:
    try:
        g.api = contract.validate_request(request)
    except ContractViolation as exc:
        with state.lock:
            state.request_violations.append(f"{request.method} {request.path}: {exc}")
            state.stats["contract_violations"] += 1
        return _error_info(400, "contract_violation", str(exc))
    missing = g.api.scopes - issued.scopes
    if missing:
        return _error_info(403, "insufficient_scope", f"needs scopes {sorted(missing)}")
    return None


def _register_response_check(app: Flask, state: SimulatorState, contract: Contract) -> None:
    @app.after_request
    def check(response: Response) -> Response:
        if (
            request.path.startswith(API_PREFIX + "/")
            and request.url_rule is not None
            and response.status_code in DECLARED_STATUSES
        ):
            violations = contract.response_violations(request, response)
            with state.lock:
                state.response_violations.extend(
                    f"{request.method} {request.url_rule.rule} {response.status_code}: {item}"
                    for item in violations
                )
        return response


def _register_token_endpoint(app: Flask, state: SimulatorState) -> None:
    @app.post("/oauth2/token")
    def token() -> tuple[Response, int]:
        if request.form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
        client_id, secret = _client_credentials()
        try:
            access_token, issued = state.issue_token(
                client_id, secret, request.form.get("scope", "")
            )
        except Refusal as refusal:
            status = 401 if refusal.error == "invalid_client" else 400
            return _oauth_error(status, refusal.error, refusal.description)
        answer = jsonify(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(state.token_lifetime_s),
                "scope": " ".join(sorted(issued.scopes)),
            }
        )
        answer.headers["Cache-Control"] = "no-store"
        return answer, 200


def _register_api(app: Flask, state: SimulatorState, notifier: Notifier) -> None:
    """The UA API operations; paths and parameter names exactly as the contract spells them."""

    @app.post(f"{_ADDRESS}/messages")
    def send_message(**_: str) -> tuple[Response, int]:
        task_id, notifications = state.send(_address(), request.get_json())
        notifier.post_all(notifications)
        return jsonify({"messageTaskId": task_id}), 202

    @app.get(f"{_ADDRESS}/messages")
    def list_messages(**_: str) -> Response:
        page, total = state.listing(_address(), g.api.query)
        if g.list_twice:
            page = [item for item in page for _copy in range(2)]
        return jsonify({"messages": page, "total": total, "resultSize": len(page)})

    @app.get(f"{_ADDRESS}/messages/<messageId>")
    def read_messages(**_: str) -> Response:
        message_format = str(g.api.query.get("format", "full"))
        messages, notifications = state.read(_address(), g.api.path["messageId"], message_format)
        notifier.post_all(notifications)
        return jsonify(messages)

    @app.get(f"{_ADDRESS}/messages/tasks/<messageTaskId>")
    def message_task(**_: str) -> Response:
        return jsonify(state.task(_address(), g.api.path["messageTaskId"]).entries())

    @app.get(f"{_ADDRESS}/messages/tasks/<messageTaskId>/status")
    def message_task_status(**_: str) -> Response:
        status = state.task_status(_address(), g.api.path["messageTaskId"])
        return jsonify({"messageTaskStatus": status})

    @app.patch(f"{_ADDRESS}/messages/<messageId>/message_control_data")
    def patch_control_data(**_: str) -> Response:
        patch = request.get_json()
        return jsonify(state.patch_control_data(_address(), g.api.path["messageId"], patch))

    @app.get(f"{_ADDRESS}/messages/<messageId>/attachments/<attachmentId>")
    def attachment(**_: str) -> Response:
        path = g.api.path
        return jsonify(state.attachment(_address(), path["messageId"], path["attachmentId"]))

    @app.get(f"{_ADDRESS}/messages/<messageId>/evidences")
    def evidences(**_: str) -> Response:
        found = state.evidences_of(_address(), g.api.path["messageId"], g.api.query)
        return jsonify({"evidences": found})

    @app.get(f"{_ADDRESS}/messages/evidences/<evidenceId>")
    def evidence_by_id(**_: str) -> Response:
        # The contract's "Gets evidence by ID": how a webhook's NewEvidence is resolved.
        evidence_id = g.api.path["evidenceId"]
        with state.lock:
            evidence = state.evidences.get(evidence_id)
            if evidence is None or _address() not in {evidence.sender, evidence.recipient}:
                raise Refusal("evidence_not_found", f"no evidence {evidence_id}")
            return jsonify([evidence.as_json()])

    @app.get(f"{_ADDRESS}/evidences/<messageType>/<evidenceId>")
    def evidence_document(**_: str) -> Response:
        if g.api.path["messageType"] != "purde":
            raise Refusal("not_hybrid", "the simulator issues no PUH (hybrid) evidences")
        document = state.evidence_document(_address(), g.api.path["evidenceId"])
        return Response(document, status=200, mimetype="application/octet-stream")

    _register_subscriptions(app, state)


def _register_subscriptions(app: Flask, state: SimulatorState) -> None:
    @app.put(f"{_ADDRESS}/message_subscriptions")
    def subscribe(**_: str) -> Response:
        callbacks = {key: str(value) for key, value in (request.get_json() or {}).items() if value}
        return jsonify({"subscriptionId": state.subscribe(_address(), callbacks)})

    @app.get(f"{_ADDRESS}/message_subscriptions")
    def subscriptions(**_: str) -> Response:
        return jsonify(state.subscription_list(_address()))

    @app.delete(f"{_ADDRESS}/message_subscriptions")
    def unsubscribe(**_: str) -> Response:
        state.unsubscribe(_address())
        return Response(status=200)


def _register_admin(app: Flask, state: SimulatorState, notifier: Notifier) -> None:
    @app.get("/_sim/stats")
    def stats() -> Response:
        with state.lock:
            return jsonify(
                {
                    **state.stats,
                    "messages": len(state.messages),
                    "evidences": len(state.evidences),
                    "tokens": len(state.tokens),
                    "request_violations": len(state.request_violations),
                    "response_violations": len(state.response_violations),
                }
            )

    @app.get("/_sim/violations")
    def violations() -> Response:
        with state.lock:
            return jsonify(
                {
                    "requests": list(state.request_violations),
                    "responses": list(state.response_violations),
                }
            )

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True})

    @app.post("/_sim/faults")
    def arm_fault() -> tuple[Response, int]:
        spec = _admin_json()
        state.arm_fault(
            Fault(
                kind=str(spec.get("kind", "")),
                times=int(spec.get("times", 1)),
                method=str(spec.get("method", "")),
                path_contains=str(spec.get("path_contains", "")),
                retry_after_s=int(spec.get("retry_after_s", 1)),
                delay_s=float(spec.get("delay_s", 0.0)),
                evidence_type=str(spec.get("evidence_type", "")),
            )
        )
        return jsonify({"faults": len(state.faults)}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
        return jsonify({"faults": 0})

    @app.post("/_sim/config")
    def configure() -> Response:
        spec = _admin_json()
        with state.lock:
            state.token_lifetime_s = float(spec.get("token_lifetime_s", state.token_lifetime_s))
            state.task_pending_polls = int(spec.get("task_pending_polls", state.task_pending_polls))
            return jsonify(
                {
                    "token_lifetime_s": state.token_lifetime_s,
                    "task_pending_polls": state.task_pending_polls,
                }
            )

    @app.post("/_sim/tokens/expire")
    def expire_tokens() -> Response:
        return jsonify({"expired": state.expire_tokens()})

    @app.get("/_sim/identity")
    def platform_identity() -> Response:
        identity = state.evidence_signer.identity()
        ca_pem = state.evidence_signer.ca_certificate_pem()
        return jsonify(
            {
                "subject": identity.subject,
                "certificate_pem": identity.certificate_pem.decode("ascii"),
                "ca_certificate_pem": ca_pem.decode("ascii") if ca_pem is not None else None,
            }
        )

    _register_admin_mailboxes(app, state, notifier)


def _register_admin_mailboxes(app: Flask, state: SimulatorState, notifier: Notifier) -> None:
    @app.post("/_sim/messages")
    def inject() -> tuple[Response, int]:
        spec = _admin_json()
        try:
            documents = [_incoming_document(item) for item in spec.get("attachments", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise Refusal("bad_admin_request", f"attachments need base64 content: {exc}") from exc
        message_id, notifications = state.inject(
            str(spec.get("to", "")),
            str(spec.get("from", "AE:PL-00000-00000-00000-00")),
            str(spec.get("subject", "")),
            documents,
            str(spec.get("textBody", "")),
        )
        notifier.post_all(notifications)
        return jsonify({"messageId": message_id}), 201

    @app.get("/_sim/mailboxes/<address>")
    def mailbox(address: str) -> Response:
        return jsonify([_admin_view(message) for message in state.mailbox(address)])


def _incoming_document(item: dict[str, Any]) -> IncomingDocument:
    return IncomingDocument(
        filename=str(item.get("filename", "dokument.xml")),
        content_type=str(item.get("contentType", "application/xml")),
        content=base64.b64decode(str(item["content"]), validate=True),
    )


def _admin_view(message: StoredMessage) -> dict[str, Any]:
    return {
        "messageId": message.message_id,
        "labels": list(message.labels),
        "from": message.sender,
        "to": list(message.recipients),
        "subject": message.subject,
        "opened": message.opened,
        "status": message.status,
        "additionalData": dict(message.additional_data),
        "attachments": [
            {
                "filename": attachment.filename,
                "contentType": attachment.content_type,
                "content": base64.b64encode(attachment.content).decode("ascii"),
            }
            for attachment in message.attachments
        ],
        "evidences": [evidence.kind for evidence in message.evidences],
    }


def _apply_fault(fault: Fault, sleep: Callable[[float], None]) -> tuple[Response, int] | None:
    if fault.kind == "delay":
        sleep(fault.delay_s)
        return None
    if fault.kind == "http500":
        return _error_info(500, "internal_error", "injected failure")
    if fault.kind == "http400":
        return _error_info(400, "refused", "injected refusal")
    if fault.kind == "http401":
        return _unauthorized("injected: the token was revoked")
    if fault.kind == "http429":
        answer, status = _error_info(429, "too_many_requests", "injected throttling")
        answer.headers["Retry-After"] = str(fault.retry_after_s)
        return answer, status
    return None


def _address() -> str:
    address: str = g.api.path["eDeliveryAddress"]
    return address


def _bearer_token() -> str:
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if kind.lower() == "bearer" else ""


def _client_credentials() -> tuple[str, str]:
    if request.authorization is not None and request.authorization.type == "basic":
        return (
            str(request.authorization.username or ""),
            str(request.authorization.password or ""),
        )
    return request.form.get("client_id", ""), request.form.get("client_secret", "")


def _admin_json() -> dict[str, Any]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        raise Refusal("bad_admin_request", "the admin API takes a JSON object")
    return spec


def _error_info(status: int, error: str, description: str) -> tuple[Response, int]:
    """The contract's error answer: a list of ``ErrorInfo``."""
    return jsonify([{"error": error, "error_description": description}]), status


def _unauthorized(description: str) -> tuple[Response, int]:
    answer, status = _oauth_error(401, "invalid_token", description)
    answer.headers["WWW-Authenticate"] = (
        f'Bearer error="invalid_token", error_description="{description}"'
    )
    return answer, status


def _oauth_error(status: int, error: str, description: str) -> tuple[Response, int]:
    """An RFC 6749/6750 error object."""
    return jsonify({"error": error, "error_description": description}), status
