"""The tax system over REST/JSON: registered once, retried while down, refusals dead-lettered."""

from __future__ import annotations

import json

import pytest
from legacy_support import delivery_of, document, every_message_retried, submit, write_region
from support import OFFICES, serve_in_thread

from simulators.tax.server import DECLARATIONS_PATH, create_app

DECLARATION = "urn:hub:legacy:deklaracja-podatkowa:1"
BODY = json.dumps({"form": "IN-1", "taxpayer": {"name": "Jan"}, "year": 2024}).encode()
JSON = "application/json"
TIMEOUT_S = 1.0


@pytest.fixture
def tax():
    simulator = serve_in_thread(create_app())
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path, tax):
    return write_region(
        tmp_path / "region.toml",
        systems=[
            {
                "name": "podatki",
                "kind": "tax-rest",
                "url": f"{tax.url}{DECLARATIONS_PATH}",
                "timeout_s": TIMEOUT_S,
            }
        ],
        routes=[{"name": "declarations", "document_type": DECLARATION, "target_system": "podatki"}],
    )


def declaration(office=OFFICES[0][0], body=BODY, content_type=JSON):
    return document(office, DECLARATION, body, content_type)


def test_each_declaration_is_registered_once_with_its_id_kept(hub, tax):
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, declaration(office)) for office, _, _ in OFFICES * 2]

    messages = hub.wait_until_settled(len(sent))

    assert {row.status for row in messages} == {"delivered"}
    received = tax.admin("GET", "/_sim/received")
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())
    for message_id in sent:
        assert delivery_of(hub, message_id).external_reference == received[message_id]["number"]


def test_a_retry_after_a_lost_answer_registers_nothing_twice(hub, tax):
    tax.admin("POST", "/_sim/faults", json={"kind": "lose_answer", "times": 1, "delay_s": 2})
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, declaration())

    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    assert [a.outcome for a in hub.attempts(message_id)] == ["retry", "delivered"]
    stats = tax.admin("GET", "/_sim/stats")
    assert (stats["registered"], stats["repeated_keys"]) == (1, 1)
    number = tax.admin("GET", "/_sim/received")[message_id]["number"]
    assert delivery_of(hub, message_id).external_reference == number


def test_while_the_system_is_down_declarations_wait_and_then_flow_none_lost(hub, tax):
    tax.admin("POST", "/_sim/faults", json={"kind": "down", "retry_after_s": 1})
    patient = hub.settings.replace(max_attempts=30, breaker_cool_down_s=1.0)
    hub.start_relay()
    hub.start_worker(settings=patient)
    sent = [submit(hub, declaration(office)) for office, _, _ in OFFICES * 2]

    hub.wait_for(lambda: every_message_retried(hub, sent), what="every declaration to be retried")
    retried = [a for message_id in sent for a in hub.attempts(message_id) if a.outcome == "retry"]
    assert all("HTTP 503" in attempt.error_text for attempt in retried)
    assert tax.admin("GET", "/_sim/stats")["registered"] == 0
    tax.admin("DELETE", "/_sim/faults")

    messages = hub.wait_until_settled(len(sent), timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    received = tax.admin("GET", "/_sim/received")
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())


def test_a_refused_declaration_is_dead_lettered_with_the_systems_reason(hub, tax):
    tax.admin("POST", "/_sim/faults", json={"kind": "permanent", "times": 1})
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, declaration())

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    last_error = delivery_of(hub, message_id).last_error
    assert "HTTP 422" in last_error
    assert "refused" in last_error
    hub.wait_for(lambda: hub.queue_depth(hub.topology.dead_letter_queue) == 1, what="a dead letter")


def test_an_invalid_declaration_is_dead_lettered_with_the_problem(hub, tax):
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, declaration(body=json.dumps({"form": "IN-1"}).encode()))

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    assert "HTTP 400: invalid-declaration: missing or empty: taxpayer" in (
        delivery_of(hub, message_id).last_error
    )
    assert tax.admin("GET", "/_sim/stats")["registered"] == 0


def test_an_unmapped_xml_document_is_refused_for_good_and_never_sent(hub, tax):
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, declaration(body=b"<deklaracja/>", content_type="application/xml"))

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    assert [a.outcome for a in hub.attempts(message_id)] == ["dead"]
    assert "content type mismatch" in delivery_of(hub, message_id).last_error
    assert tax.admin("GET", "/_sim/stats")["requests"] == 0
