"""The monitoring routes over a real store, through Flask's test client.

The JSON API now needs a login or a bearer token, so these tests send a viewer's token;
/healthz, /readyz and /metrics stay open to machines.
"""

from __future__ import annotations

import uuid

from dashboard_support import bearer, with_accounts
from prometheus_client.parser import text_string_to_metric_families

from hub.breaker import CircuitBreakers
from hub.envelope import Address, Envelope
from hub.store.repository import PlannedDelivery
from hub.web import create_app


def test_summary_and_trace_show_what_the_store_holds(settings, store):
    envelope = Envelope(
        document_type="t", source="epuap", destination=Address("1421"), body=b"<a/>"
    )
    store.accept(envelope)
    client = create_app(with_accounts(settings, store), store).test_client()

    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/api/summary", headers=bearer()).json == {
        "messages_by_status": {"accepted": 1}
    }
    trace = client.get(f"/api/messages/{envelope.envelope_id}", headers=bearer()).json
    assert trace["status"] == "accepted"
    assert trace["destination"] == "1421"
    assert trace["deliveries"] == []


def test_an_unknown_message_is_a_problem_404(settings, store):
    client = create_app(with_accounts(settings, store), store).test_client()
    response = client.get(f"/api/messages/{uuid.uuid4()}", headers=bearer())
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


def test_metrics_count_what_the_store_holds_and_parse_as_prometheus_text(settings, store):
    delivered = Envelope(
        document_type="t", source="epuap", destination=Address("1421"), body=b"<a/>"
    )
    store.accept(delivered)
    [ticket] = store.record_routing(str(delivered.envelope_id), [PlannedDelivery("eod@1421", "r")])
    store.complete_delivery(
        ticket.delivery_id, store.claim_delivery(ticket.delivery_id, "w", 60), "R1"
    )
    store.accept(
        Envelope(document_type="t", source="epuap", destination=Address("1421"), body=b"<b/>")
    )
    CircuitBreakers(store, settings).pause("eod@146501_1", "operator", "maintenance")

    response = create_app(settings, store).test_client().get("/metrics")
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    assert samples[("hub_messages", (("status", "delivered"),))] == 1
    assert samples[("hub_messages", (("status", "accepted"),))] == 1
    assert samples[("hub_deliveries", (("endpoint", "eod@1421"), ("status", "delivered")))] == 1
    assert samples[("hub_attempts", (("endpoint", "eod@1421"), ("outcome", "delivered")))] == 1
    assert samples[("hub_endpoint_circuit", (("endpoint", "eod@146501_1"),))] == 2
    assert samples[("hub_receipts_late", ())] == 0
