"""The registers' AMQP interface: queue names, the hub's headers, reading answers."""

from __future__ import annotations

import json
import uuid

import pika
import pytest

from adapters.registers.interface import (
    ACK_KIND,
    MalformedAnswer,
    RegisterQueues,
    message_properties,
    parse_answer,
)
from hub.envelope import Address, Envelope
from hub.region import EndpointConfig


def endpoint(**options):
    return EndpointConfig(
        name="zabytki@1421",
        kind="registers-amqp",
        office="1421",
        system="zabytki",
        url="amqp://x",
        options=options,
    )


def test_queues_default_to_legacy_system_office_in_and_out():
    queues = RegisterQueues.of(endpoint())
    assert (queues.documents, queues.answers, queues.parked) == (
        "legacy.zabytki.1421.in",
        "legacy.zabytki.1421.out",
        "legacy.zabytki.1421.out.parked",
    )


def test_queue_names_are_templates_in_the_endpoint_options():
    queues = RegisterQueues.of(endpoint(queue_in="wkz.{office}.wnioski", queue_out="wkz.odp"))
    assert (queues.documents, queues.answers) == ("wkz.1421.wnioski", "wkz.odp")


def test_a_document_carries_the_envelope_in_its_properties_and_headers():
    envelope = Envelope(
        document_type="urn:hub:legacy:rejestr-zabytkow:1",
        source="epuap",
        destination=Address("1421", "zabytki"),
        body=b"<w/>",
        correlation_id="case-7",
        headers={"epuap-sender": "/jan/skrytka"},
    )
    properties = message_properties(envelope, endpoint(), "legacy.zabytki.1421.out")

    assert properties.message_id == str(envelope.envelope_id)
    assert (properties.correlation_id, properties.reply_to) == ("case-7", "legacy.zabytki.1421.out")
    assert properties.delivery_mode == 2
    assert properties.headers == {
        "hub-envelope-id": str(envelope.envelope_id),
        "hub-correlation-id": "case-7",
        "hub-document-type": "urn:hub:legacy:rejestr-zabytkow:1",
        "hub-office": "1421",
        "hub-system": "zabytki",
        "hub-endpoint": "zabytki@1421",
        "hub-source": "epuap",
        "hub-created-at": envelope.created_at.isoformat(),
        "hub-body-sha256": envelope.body_sha256,
        "content-type": "application/xml",
        "hub-h-epuap-sender": "/jan/skrytka",
    }


def answer(message_id="answer-1", **values):
    body = json.dumps(values).encode()
    return pika.BasicProperties(message_id=message_id), body


def test_an_acknowledgement_is_read_with_its_register_number():
    envelope_id = str(uuid.uuid4())
    parsed = parse_answer(
        *answer(kind="acknowledgement", envelope_id=envelope_id, register_number="Z/1")
    )
    assert (parsed.answer_id, parsed.envelope_id, parsed.receipt_kind, parsed.detail) == (
        "answer-1",
        envelope_id,
        ACK_KIND,
        "Z/1",
    )


@pytest.mark.parametrize(
    ("properties_and_body", "problem"),
    [
        (
            answer(message_id=None, kind="status", envelope_id=str(uuid.uuid4()), status="x"),
            "no message_id",
        ),
        ((pika.BasicProperties(message_id="a"), b"{"), "not JSON"),
        ((pika.BasicProperties(message_id="a"), b"[]"), "not a JSON object"),
        (answer(kind="maybe", envelope_id=str(uuid.uuid4())), "unknown answer kind"),
        (answer(kind="refusal", envelope_id=str(uuid.uuid4())), "must carry reason"),
        (answer(kind="status", envelope_id="nope", status="x"), "is not a UUID"),
    ],
)
def test_an_unreadable_answer_says_why(properties_and_body, problem):
    with pytest.raises(MalformedAnswer, match=problem):
        parse_answer(*properties_and_body)
