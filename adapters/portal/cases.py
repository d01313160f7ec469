"""The case API: the portal reads a case's status and history; domain systems report steps.

- ``GET /api/cases/<case_id>``: the case's status, its history with times and the
  statutory deadline. A portal client must say whose behalf it reads on
  (``X-Hub-Party``, the party the portal authenticated, e.g.
  ``epuap:/jan-kowalski/skrytka``) and sees only that party's cases; an office's
  client sees only its office's cases. Anything else is answered 404, exactly as a
  case that does not exist, so a caller learns nothing of other people's cases.
- ``POST /api/cases/<case_id>/status`` (office clients only): ``{"status": "assigned",
  "note": "..."}``; ``status`` is one of ``hub.store.cases.REPORTABLE_STATUSES``.

Every call carries ``Authorization: Bearer <token>`` of a client of the hub's registry
(``hub client add``) allowed the ``cases`` API (office clients are, unless narrowed;
``--office portal`` makes the portal's client).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from hub.errors import HubError
from hub.identity import CASES, Client
from hub.store.cases import REPORTABLE_STATUSES, CaseView, case_view, report_case_status
from hub.store.repository import Store
from hub.web import admit, problem, refuse

CHANNEL = "case-api"
PARTY_HEADER = "X-Hub-Party"

blueprint = Blueprint("portal_cases", __name__)
Answer = tuple[Response, int]


def may_read(client: Client, case: CaseView, party: str | None) -> bool:
    """Whether ``client``, calling for ``party``, may see ``case``."""
    if client.office is not None:
        return case.office == client.office
    return client.is_portal and party is not None and case.party == party


def register(app: Flask) -> None:
    """Plug the case API into the hub's HTTP app (entry point ``hub.web``)."""
    app.register_blueprint(blueprint)


@blueprint.get("/api/cases/<case_id>")
def read_case(case_id: str) -> Answer:
    """The case's status, history and deadline, for a caller allowed to see it."""
    client = admit(CHANNEL, CASES)
    if not isinstance(client, Client):
        return client
    if client.office is None and not request.headers.get(PARTY_HEADER):
        detail = f"a portal reads on behalf of a party: the {PARTY_HEADER} header is required"
        return refuse(CHANNEL, 400, "missing-header", detail)
    case = _case(case_id)
    if case is None or not may_read(client, case, request.headers.get(PARTY_HEADER)):
        return problem(404, "case-not-found", f"no case {case_id} for this caller")
    return jsonify(case.as_json()), 200


@blueprint.post("/api/cases/<case_id>/status")
def report_status(case_id: str) -> Answer:
    """An office's system reports a step of one of its cases."""
    client = admit(CHANNEL, CASES)
    if not isinstance(client, Client):
        return client
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


def _case(case_id: str) -> CaseView | None:
    return case_view(_store(), case_id)


def _store() -> Store:
    store: Store = current_app.config["HUB_STORE"]
    return store
