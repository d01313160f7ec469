"""The REST intake for domain systems: stored before the answer, idempotent, clear refusals."""

from __future__ import annotations

import pytest

from adapters.eod.inbound import INTAKE_PATH
from hub.envelope import Address, Envelope
from hub.identity import ClientRegistry
from hub.store.models import MessageRow
from hub.web import create_app

DECISION = b'<d:Decyzja xmlns:d="urn:hub:eod:decyzja:1"><d:Znak>GK.1</d:Znak></d:Decyzja>'
PISMO = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>wniosek</w:T></w:Pismo>'
TOKEN: dict[str, str] = {}


@pytest.fixture
def region_path(region_path):
    # Decisions from the EOD go out to the citizen through the EOD itself, in this region.
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[routes]]\nname = "decision"\ndocument_type = "urn:hub:eod:decyzja:1"\n'
            'sources = ["eod"]\ntarget_system = "eod"\n'
        )
    return region_path


@pytest.fixture
def case_id(store):
    filing = Envelope(
        document_type="http://crd.gov.pl/wzor/2013/12/12/1410/",
        source="epuap",
        destination=Address("146501_1"),
        body=PISMO,
        headers={"epuap-reply-to": "/jan-kowalski/skrytka"},
    )
    store.accept(filing)
    return filing.correlation_id


@pytest.fixture
def client(settings, store, case_id):
    TOKEN["eod"] = ClientRegistry(store).add("eod-146501_1", "146501_1", sources=["eod"])
    TOKEN["case"] = case_id
    return create_app(settings, store).test_client()


def post(client, body=DECISION, key="dec-1", **headers):
    values = {
        "Authorization": f"Bearer {TOKEN['eod']}",
        "X-Hub-Source": "eod",
        "X-Hub-Office": "146501_1",
        "Idempotency-Key": key,
        "X-Hub-Correlation-ID": TOKEN["case"],
        "X-Hub-Header-epuap-recipient": "/jan-kowalski/skrytka",
    }
    values.update(headers)
    return client.post(INTAKE_PATH, data=body, content_type="application/xml", headers=values)


def test_a_decision_is_stored_with_its_case_and_headers_before_the_answer(client, store):
    response = post(client)

    assert response.status_code == 202
    envelope_id = response.json["envelope_id"]
    with store.session() as session:
        message = session.get(MessageRow, envelope_id)
    assert (message.status, message.source, message.destination) == ("accepted", "eod", "146501_1")
    assert message.correlation_id == TOKEN["case"]
    assert message.document_type == "urn:hub:eod:decyzja:1"
    assert '"epuap-recipient": "/jan-kowalski/skrytka"' in message.headers


def test_the_same_idempotency_key_stores_nothing_twice_and_answers_as_the_first_time(
    client, store
):
    first, again = post(client), post(client)
    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert store.count_unsent_outbox() == 2  # the filing's and the decision's


def test_the_same_idempotency_key_with_another_body_is_a_conflict(client, store):
    post(client)
    other = post(client, body=DECISION.replace(b"GK.1", b"GK.2"))
    assert (other.status_code, other.json["type"]) == (409, "urn:hub:problem:idempotency-conflict")
    assert store.count_unsent_outbox() == 2


@pytest.mark.parametrize(
    ("headers", "status", "problem"),
    [
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"X-Hub-Office": "999999_9"}, 403, "wrong-office"),
        ({"X-Hub-Source": "podatki"}, 403, "wrong-source"),
        ({"Idempotency-Key": ""}, 400, "missing-header"),
        ({"X-Hub-Header-signature-checks": "[]"}, 400, "reserved-header"),
        ({"X-Hub-Header-colour": "red"}, 400, "header-not-allowed"),
        ({"X-Hub-Correlation-ID": "case-42"}, 404, "case-not-found"),
    ],
)
def test_refusals_say_what_to_fix(client, store, headers, status, problem):
    response = post(client, **headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == f"urn:hub:problem:{problem}"
    assert store.count_unsent_outbox() == 1  # only the filing of the fixture


def test_a_sole_source_need_not_be_named(client, store):
    response = client.post(
        INTAKE_PATH,
        data=DECISION,
        content_type="application/xml",
        headers={"Authorization": f"Bearer {TOKEN['eod']}", "Idempotency-Key": "no-source"},
    )
    assert response.status_code == 202, response.json
    with store.session() as session:
        message = session.get(MessageRow, response.json["envelope_id"])
    assert (message.source, message.destination) == ("eod", "146501_1")


def test_a_malformed_document_is_kept_as_rejected_and_refused(client, store):
    response = post(client, body=b"<d:Decyzja>", key="broken")
    assert response.status_code == 400
    assert response.json["type"] == "urn:hub:problem:malformed-document"
    with store.session() as session:
        [message] = session.query(MessageRow).filter_by(status="rejected").all()
    assert message.external_id == "intake:eod-146501_1:broken"
