"""The finance system over SOAP: registered once, retried while down, refusals dead-lettered."""

from __future__ import annotations

import pytest
from legacy_support import (
    delivery_of,
    document,
    every_message_retried,
    submit,
    write_region,
)
from support import OFFICES, serve_in_thread

from simulators.finance.server import SERVICE_PATH, create_app

INVOICE = "urn:hub:legacy:faktura:1"
PAYMENT = "urn:hub:legacy:platnosc:1"
BODY = b'<f:Faktura xmlns:f="urn:hub:legacy:faktura:1"><f:Numer>FV/1/2024</f:Numer></f:Faktura>'
# Long enough for a lost answer to be lost, short enough to keep the tests quick.
TIMEOUT_S = 1.0


@pytest.fixture
def finance():
    simulator = serve_in_thread(create_app())
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path, finance):
    return write_region(
        tmp_path / "region.toml",
        systems=[
            {
                "name": "finanse",
                "kind": "finance-soap",
                "url": f"{finance.url}{SERVICE_PATH}",
                "timeout_s": TIMEOUT_S,
                "options": {"default_kind": "FAKTURA", "document_kinds": {PAYMENT: "PLATNOSC"}},
            }
        ],
        routes=[
            {"name": f"{kind}-to-finance", "document_type": kind, "target_system": "finanse"}
            for kind in (INVOICE, PAYMENT)
        ],
    )


def test_each_document_is_registered_once_with_its_number_kept(hub, finance):
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, document(office, INVOICE, BODY)) for office, _, _ in OFFICES]
    sent.append(submit(hub, document(OFFICES[0][0], PAYMENT, BODY)))

    messages = hub.wait_until_settled(len(sent))

    assert {row.status for row in messages} == {"delivered"}
    received = finance.admin("GET", "/_sim/received")
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())
    for message_id in sent:
        assert delivery_of(hub, message_id).external_reference == received[message_id]["number"]
        assert [a.outcome for a in hub.attempts(message_id)] == ["delivered"]


def test_a_retry_after_a_lost_answer_registers_nothing_twice(hub, finance):
    finance.admin("POST", "/_sim/faults", json={"kind": "lose_answer", "times": 1, "delay_s": 2})
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(OFFICES[1][0], INVOICE, BODY))

    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    assert [a.outcome for a in hub.attempts(message_id)] == ["retry", "delivered"]
    assert "unreachable" in hub.attempts(message_id)[0].error_text
    stats = finance.admin("GET", "/_sim/stats")
    assert (stats["registered"], stats["repeated_keys"]) == (1, 1)
    number = finance.admin("GET", "/_sim/received")[message_id]["number"]
    assert delivery_of(hub, message_id).external_reference == number


def test_while_the_system_is_down_deliveries_wait_and_then_flow_none_lost(hub, finance):
    finance.admin("POST", "/_sim/faults", json={"kind": "down"})
    patient = hub.settings.replace(max_attempts=30, breaker_cool_down_s=1.0)
    hub.start_relay()
    hub.start_worker(settings=patient)
    sent = [submit(hub, document(office, INVOICE, BODY)) for office, _, _ in OFFICES * 2]

    hub.wait_for(lambda: every_message_retried(hub, sent), what="every document to be retried")
    assert all(row.status in {"retrying", "delivering"} for row in hub.messages())
    assert finance.admin("GET", "/_sim/stats")["registered"] == 0
    finance.admin("DELETE", "/_sim/faults")

    messages = hub.wait_until_settled(len(sent), timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    received = finance.admin("GET", "/_sim/received")
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())


def test_a_server_fault_is_retried_then_registered(hub, finance):
    finance.admin("POST", "/_sim/faults", json={"kind": "transient", "times": 1})
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(OFFICES[0][0], INVOICE, BODY))

    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    first, second = hub.attempts(message_id)
    assert (first.outcome, first.error_class) == ("retry", "TransientDeliveryError")
    assert "soap-env:Server" in first.error_text
    assert "Kod 500" in first.error_text
    assert second.outcome == "delivered"


def test_a_refused_document_is_dead_lettered_with_the_systems_reason(hub, finance):
    finance.admin("POST", "/_sim/faults", json={"kind": "permanent", "times": 1})
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(OFFICES[0][0], INVOICE, BODY))

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    [attempt] = hub.attempts(message_id)
    assert attempt.error_class == "PermanentDeliveryError"
    assert "soap-env:Client" in attempt.error_text
    assert "Kod 102" in attempt.error_text
    hub.wait_for(lambda: hub.queue_depth(hub.topology.dead_letter_queue) == 1, what="a dead letter")
    assert finance.admin("GET", "/_sim/stats")["registered"] == 0


def test_a_document_of_no_finance_kind_is_refused_without_calling_the_system(hub, finance):
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(OFFICES[0][0], INVOICE, BODY, **{"finance-kind": "ZUS"}))

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    assert "no finance document kind" in delivery_of(hub, message_id).last_error
    assert finance.admin("GET", "/_sim/stats")["requests"] == 0
