"""One filing carried end to end: ePUAP inbox → store → RabbitMQ → EOD, on SQLite and PostgreSQL."""

from __future__ import annotations

import pika
import pytest

from hub.broker.connection import close_quietly, connect
from hub.broker.publisher import ConfirmingPublisher, PublishRefused
from hub.store.models import DeliveryRow


def test_each_filing_is_delivered_exactly_once(hub, epuap, eod, enqueue_filings):
    submitted = enqueue_filings(10)
    hub.start_relay()
    hub.start_worker()

    assert hub.poll() == submitted
    messages = hub.wait_until_settled(submitted)

    assert {row.status for row in messages} == {"delivered"}
    arrivals = eod.admin("GET", "/_sim/received")
    assert {row.id for row in messages} == set(arrivals)
    assert all(entry["count"] == 1 for entry in arrivals.values())
    assert eod.admin("GET", "/_sim/stats")["registered"] == submitted
    stats = epuap.admin("GET", "/_sim/stats")
    assert (stats["pending"], stats["confirmed"]) == (0, submitted)
    for row in messages[:3]:
        assert [(a.number, a.outcome) for a in hub.attempts(row.id)] == [(1, "delivered")]


def test_each_filing_reaches_its_own_offices_eod(hub, eod, enqueue_filings):
    enqueue_filings(3)
    hub.start_relay()
    hub.start_worker()
    hub.poll()
    messages = hub.wait_until_settled(6)

    assert sorted(row.destination for row in messages) == ["1421"] * 3 + ["146501_1"] * 3
    with hub.store.session() as session:
        endpoints = sorted(row.endpoint for row in session.query(DeliveryRow))
    assert endpoints == ["eod@1421"] * 3 + ["eod@146501_1"] * 3


def test_a_malformed_document_is_rejected_and_confirmed_and_the_next_still_flows(
    hub, epuap, eod, enqueue_filings
):
    epuap.admin(
        "POST",
        "/_sim/mailboxes/umwarszawa/skrytka/raw?filename=zly.xml",
        data=b"<wnio:Dokument><niedomkniety>",
    )
    enqueue_filings(1)
    hub.start_relay()
    hub.start_worker()

    assert hub.poll() == 3
    messages = hub.wait_until_settled(3)

    rejected = [row for row in messages if row.status == "rejected"]
    assert len(rejected) == 1
    assert rejected[0].status_reason.startswith("malformed-document: not well-formed XML")
    assert rejected[0].body == b"<wnio:Dokument><niedomkniety>"
    assert sorted(row.status for row in messages) == ["delivered", "delivered", "rejected"]
    assert epuap.admin("GET", "/_sim/stats")["pending"] == 0
    assert rejected[0].id not in eod.admin("GET", "/_sim/received")


def test_a_document_nobody_handles_is_rejected_with_its_reason(hub, epuap, eod):
    unknown_form = b'<x:Wniosek xmlns:x="http://crd.gov.pl/wzor/2099/01/01/9999/"/>'
    epuap.admin("POST", "/_sim/mailboxes/sppruszkow/skrytka/raw", data=unknown_form)
    hub.start_relay()
    hub.start_worker()
    hub.poll()

    [message] = hub.wait_until_settled(1)
    assert message.status == "rejected"
    assert "unroutable" in message.status_reason
    assert "http://crd.gov.pl/wzor/2099/01/01/9999/" in message.status_reason
    assert eod.admin("GET", "/_sim/received") == {}


def test_a_filing_pulled_twice_after_a_lost_confirmation_is_stored_once(
    hub, epuap, eod, enqueue_filings
):
    epuap.admin(
        "POST",
        "/_sim/faults",
        json={"operation": "potwierdzOdebranie", "kind": "drop_confirm", "times": 1},
    )
    enqueue_filings(1)
    hub.start_relay()
    hub.start_worker()

    hub.poll()  # one confirmation is lost: that document stays in the inbox
    hub.poll()  # ... and is pulled again, and recognised

    messages = hub.wait_until_settled(2)
    assert len(messages) == 2
    assert epuap.admin("GET", "/_sim/stats")["pending"] == 0
    assert all(entry["count"] == 1 for entry in eod.admin("GET", "/_sim/received").values())


def test_a_publish_no_queue_would_take_fails_instead_of_vanishing(hub):
    connection = connect(hub.settings.amqp_url)
    try:
        publisher = ConfirmingPublisher(connection, hub.settings.amqp_url)
        properties = pika.BasicProperties(message_id="m1", delivery_mode=2)
        with pytest.raises(
            PublishRefused, match=r"no queue takes routing key 'deliver\.nowhere@00'"
        ):
            publisher.publish(hub.topology.exchange, "deliver.nowhere@00", properties, b"x")
    finally:
        close_quietly(connection)
