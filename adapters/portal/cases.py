"""The case API: the portal reads a case's status and history; domain systems report steps.

- ``GET /api/cases/<case_id>``: the case's status, its history with times and the
  statutory deadline. A portal client must say whose behalf it reads on
  (``X-Hub-Party``, the party the portal authenticated, e.g.
  ``epuap:/jan-kowalski/skrytka``) and sees only that party's cases; an office's
  client sees only its office's cases. Anything else is answered 404, exactly as a
  case that does not exist, so a caller learns nothing of other people's cases.
- ``POST /api/cases/<case_id>/status`` (office clients only): ``{"status": "assigned",
  "note": "..."}``; ``status`` is one of ``hub.store.cases.REPORTABLE_STATUSES``.

Every call carries ``Authorization: Bearer <token>``. Clients come from the setting
``case_api_clients``: entries ``name:scope:sha256-of-token`` separated by commas or
new lines, where scope is ``portal`` or ``office=<office id>``; only the token's
SHA-256 is kept in the settings.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from hub.errors import ConfigurationError, HubError
from hub.settings import Settings
from hub.store.cases import REPORTABLE_STATUSES, CaseView, case_view, report_case_status
from hub.store.repository import Store
from hub.web import problem, refuse

CHANNEL = "case-api"
PARTY_HEADER = "X-Hub-Party"
EXTENSION_KEY = "case_api_clients"

blueprint = Blueprint("portal_cases", __name__)


@dataclass(frozen=True, slots=True)
class CaseApiClient:
    """A calling system: the portal (reads for a party) or one office's system."""

    name: str
    token_sha256: str
    office: str | None  # None for the portal

    def may_read(self, case: CaseView, party: str | None) -> bool:
        """Whether this client, calling for ``party``, may see ``case``."""
        if self.office is not None:
            return case.office == self.office
        return party is not None and case.party == party


def parse_clients(text: str) -> list[CaseApiClient]:
    """Read ``case_api_clients``.

    Raises:
        ConfigurationError: an entry is not ``name:portal|office=<id>:sha256``.
    """
    clients = []
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        name, scope, digest = (part.strip() for part in [*entry.split(":"), "", ""][:3])
        if not name or len(digest) != 64 or not (scope == "portal" or scope.startswith("office=")):
            raise ConfigurationError(
                f"case_api_clients entry {entry.strip()!r} is not name:portal|office=<id>:sha256"
            )
        office = scope.removeprefix("office=") if scope != "portal" else None
        clients.append(CaseApiClient(name, digest.lower(), office or None))
    return clients


def client_entry(name: str, scope: str, token: str) -> str:
    """The ``case_api_clients`` entry for a client holding ``token``."""
    return f"{name}:{scope}:{hashlib.sha256(token.encode()).hexdigest()}"


def register(app: Flask) -> None:
    """Plug the case API into the hub's HTTP app (entry point ``hub.web``)."""
    settings: Settings = app.config["HUB_SETTINGS"]
    app.extensions[EXTENSION_KEY] = parse_clients(settings.case_api_clients)
    app.register_blueprint(blueprint)


@blueprint.get("/api/cases/<case_id>")
def read_case(case_id: str) -> tuple[Response, int]:
    """The case's status, history and deadline, for a caller allowed to see it."""
    client = _caller()
    if client is None:
        return refuse(CHANNEL, 401, "unauthorized", "a valid bearer token is required")
    if client.office is None and not request.headers.get(PARTY_HEADER):
        detail = f"a portal reads on behalf of a party: the {PARTY_HEADER} header is required"
        return refuse(CHANNEL, 400, "missing-header", detail)
    case = _case(case_id)
    if case is None or not client.may_read(case, request.headers.get(PARTY_HEADER)):
        return problem(404, "case-not-found", f"no case {case_id} for this caller")
    return jsonify(case.as_json()), 200


@blueprint.post("/api/cases/<case_id>/status")
def report_status(case_id: str) -> tuple[Response, int]:
    """An office's system reports a step of one of its cases."""
    client = _caller()
    if client is None:
        return refuse(CHANNEL, 401, "unauthorized", "a valid bearer token is required")
    if client.office is None:
        return refuse(CHANNEL, 403, "forbidden", "only an office's system reports case steps")
    report: Any = request.get_json(silent=True)
    status = report.get("status") if isinstance(report, dict) else None
    if status not in REPORTABLE_STATUSES:
        detail = f"status must be one of {', '.join(REPORTABLE_STATUSES)}"
        return refuse(CHANNEL, 422, "unknown-status", detail)
    note = str(report.get("note") or "")[:1000]
    try:
        reported = report_case_status(
            _store(), case_id, client.office, status, reported_by=client.name, note=note
        )
    except HubError as exc:
        return problem(503, "store-unavailable", f"the report cannot be stored now: {exc.reason}")
    if not reported:
        return problem(404, "case-not-found", f"no case {case_id} for this caller")
    case = _case(case_id)
    assert case is not None
    return jsonify(case.as_json()), 201


def _caller() -> CaseApiClient | None:
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not offered:
        return None
    digest = hashlib.sha256(offered.encode()).hexdigest()
    clients: list[CaseApiClient] = current_app.extensions[EXTENSION_KEY]
    return next((c for c in clients if hmac.compare_digest(c.token_sha256, digest)), None)


def _case(case_id: str) -> CaseView | None:
    return case_view(_store(), case_id)


def _store() -> Store:
    store: Store = current_app.config["HUB_STORE"]
    return store
