"""The case API: a party sees its own case, an office its own, nobody anyone else's."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub.envelope import Address, Envelope
from hub.identity import ClientRegistry
from hub.web import create_app

PISMO = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>wniosek</w:T></w:Pismo>'
CITIZEN = "/jan-kowalski/skrytka"
TOKENS: dict[str, str] = {}


@pytest.fixture
def client(settings, store):
    registry = ClientRegistry(store)
    TOKENS["portal"] = registry.add("portal", "portal")
    TOKENS["warszawa"] = registry.add("eod-146501_1", "146501_1", sources=["eod"])
    TOKENS["pruszkow"] = registry.add("eod-1421", "1421", sources=["eod"])
    return create_app(settings, store).test_client()


@pytest.fixture
def case_id(store):
    filing = Envelope(
        document_type="http://crd.gov.pl/wzor/2013/12/12/1410/",
        source="epuap",
        destination=Address("146501_1"),
        body=PISMO,
        headers={"epuap-reply-to": CITIZEN, "statutory-deadline-days": "14"},
    )
    store.accept(filing)
    return filing.correlation_id


def as_portal(party=f"epuap:{CITIZEN}"):
    return {"Authorization": f"Bearer {TOKENS['portal']}", "X-Hub-Party": party}


def as_office(name):
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def test_the_party_sees_its_case_with_history_and_deadline(client, case_id):
    response = client.get(f"/api/cases/{case_id}", headers=as_portal())

    assert response.status_code == 200
    case = response.json
    assert (case["office"], case["status"]) == ("146501_1", "received")
    assert [step["event"] for step in case["history"]] == ["received"]
    opened = _when(case["opened_at"])
    assert _when(case["deadline_at"]) - opened == timedelta(days=14)


def test_steps_reported_by_the_office_build_the_history(client, case_id):
    for status in ("registered", "assigned", "decision-issued"):
        reported = client.post(
            f"/api/cases/{case_id}/status",
            json={"status": status, "note": f"krok {status}"},
            headers=as_office("warszawa"),
        )
        assert reported.status_code == 201, reported.json

    case = client.get(f"/api/cases/{case_id}", headers=as_portal()).json
    assert case["status"] == "decision-issued"
    steps = [(step["event"], step.get("reported_by")) for step in case["history"]]
    assert steps == [
        ("received", None),
        ("registered", "eod-146501_1"),
        ("assigned", "eod-146501_1"),
        ("decision-issued", "eod-146501_1"),
    ]


def test_another_office_neither_reads_nor_reports_the_case(client, case_id):
    assert client.get(f"/api/cases/{case_id}", headers=as_office("pruszkow")).status_code == 404
    reported = client.post(
        f"/api/cases/{case_id}/status", json={"status": "closed"}, headers=as_office("pruszkow")
    )
    assert reported.status_code == 404
    own = client.get(f"/api/cases/{case_id}", headers=as_office("warszawa"))
    assert (own.status_code, own.json["status"]) == (200, "received")


def test_another_party_gets_the_same_404_as_a_case_that_does_not_exist(client, case_id):
    stranger = client.get(f"/api/cases/{case_id}", headers=as_portal("epuap:/anna-nowak/skrytka"))
    missing = client.get("/api/cases/no-such-case", headers=as_portal())
    assert stranger.status_code == missing.status_code == 404
    assert stranger.json["type"] == missing.json["type"] == "urn:hub:problem:case-not-found"


@pytest.mark.parametrize(
    ("caller", "body", "status", "code"),
    [
        (dict, {"status": "assigned"}, 401, "unauthorized"),
        (lambda: {"Authorization": "Bearer wrong"}, {"status": "assigned"}, 401, "unauthorized"),
        (as_portal, {"status": "assigned"}, 403, "forbidden"),
        (lambda: as_office("warszawa"), {"status": "teleported"}, 422, "unknown-status"),
    ],
)
def test_bad_reports_are_refused_with_a_code(client, case_id, caller, body, status, code):
    response = client.post(f"/api/cases/{case_id}/status", json=body, headers=caller())
    assert response.status_code == status
    assert response.json["type"] == f"urn:hub:problem:{code}"


def test_a_portal_call_without_a_party_is_refused(client, case_id):
    response = client.get(
        f"/api/cases/{case_id}", headers={"Authorization": f"Bearer {TOKENS['portal']}"}
    )
    assert (response.status_code, response.json["type"]) == (400, "urn:hub:problem:missing-header")


def _when(text):
    return datetime.fromisoformat(text)
