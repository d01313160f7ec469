"""The monitoring routes over a real store, through Flask's test client."""

from __future__ import annotations

import uuid

from hub.envelope import Address, Envelope
from hub.web import create_app


def test_summary_and_trace_show_what_the_store_holds(settings, store):
    envelope = Envelope(
        document_type="t", source="epuap", destination=Address("1421"), body=b"<a/>"
    )
    store.accept(envelope)
    client = create_app(settings, store).test_client()

    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/api/summary").json == {"messages_by_status": {"accepted": 1}}
    trace = client.get(f"/api/messages/{envelope.envelope_id}").json
    assert trace["status"] == "accepted"
    assert trace["destination"] == "1421"
    assert trace["deliveries"] == []


def test_an_unknown_message_is_a_problem_404(settings, store):
    response = create_app(settings, store).test_client().get(f"/api/messages/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["type"] == "urn:hub:problem:not-found"


def test_ready_when_database_and_broker_answer(settings, store):
    response = create_app(settings, store).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"ready": True, "problems": {}}


def test_not_ready_names_the_broker_when_it_is_down(settings, store):
    unreachable = settings.replace(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    response = create_app(unreachable, store).test_client().get("/readyz")
    assert response.status_code == 503
    assert "RabbitMQ at 127.0.0.1:1 is unreachable" in response.json["problems"]["broker"]
