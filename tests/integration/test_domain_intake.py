"""The REST intake for domain systems: stored before the answer, idempotent, clear refusals."""

from __future__ import annotations

import pytest

from adapters.eod.inbound import INTAKE_PATH
from hub.store.models import MessageRow
from hub.web import create_app

DECISION = b'<d:Decyzja xmlns:d="urn:hub:eod:decyzja:1"><d:Znak>GK.1</d:Znak></d:Decyzja>'
TOKEN = "eod-secret-token"


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
def client(settings, store):
    return create_app(settings.replace(intake_token=TOKEN), store).test_client()


def post(client, body=DECISION, key="dec-1", **headers):
    values = {
        "Authorization": f"Bearer {TOKEN}",
        "X-Hub-Source": "eod",
        "X-Hub-Office": "146501_1",
        "Idempotency-Key": key,
        "X-Hub-Correlation-ID": "case-42",
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
    assert message.correlation_id == "case-42"
    assert message.document_type == "urn:hub:eod:decyzja:1"
    assert '"epuap-recipient": "/jan-kowalski/skrytka"' in message.headers


def test_the_same_idempotency_key_stores_nothing_twice(client, store):
    first, again = post(client), post(client)
    assert again.json == {"envelope_id": first.json["envelope_id"], "outcome": "duplicate"}
    assert store.count_unsent_outbox() == 1


@pytest.mark.parametrize(
    ("headers", "status", "problem"),
    [
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"X-Hub-Office": "999999_9"}, 404, "unknown-office"),
        ({"X-Hub-Source": ""}, 400, "missing-header"),
    ],
)
def test_refusals_say_what_to_fix(client, store, headers, status, problem):
    response = post(client, **headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == f"urn:hub:problem:{problem}"
    assert store.count_unsent_outbox() == 0


def test_a_malformed_document_is_kept_as_rejected_and_refused(client, store):
    response = post(client, body=b"<d:Decyzja>", key="broken")
    assert response.status_code == 400
    assert response.json["type"] == "urn:hub:problem:malformed-document"
    with store.session() as session:
        [message] = session.query(MessageRow).all()
    assert message.status == "rejected"
