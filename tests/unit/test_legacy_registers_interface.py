"""The registers' AMQP interface: queue names, shared interfaces, the hub's headers, answers."""

from __future__ import annotations

import json
import uuid

import pika
import pytest

from adapters.registers.inbound import AnswersQueue, answer_queues, why_not_answerable_here
from adapters.registers.interface import (
    ACK_KIND,
    MalformedAnswer,
    RegisterQueues,
    is_shared,
    message_properties,
    parse_answer,
    register_interfaces,
)
from hub.envelope import Address, Envelope
from hub.region import EndpointConfig


def endpoint(office="1421", system="zabytki", **options):
    return EndpointConfig(
        name=f"{system}@{office}",
        kind="registers-amqp",
        office=office,
        system=system,
        url="amqp://x",
        options=options,
    )


SHARED = {"queue_in": "legacy.{system}.in", "queue_out": "legacy.{system}.out"}


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


def test_templates_without_the_office_give_every_office_of_the_system_one_interface():
    endpoints = [endpoint(office, "alkohol", **SHARED) for office in ("146501_1", "1421")]
    endpoints += [endpoint(office, "zabytki") for office in ("146501_1", "1421")]

    interfaces = register_interfaces(endpoints)

    assert [(i.name, i.shared, i.endpoints) for i in interfaces] == [
        ("alkohol", True, ("alkohol@146501_1", "alkohol@1421")),
        ("zabytki@146501_1", False, ("zabytki@146501_1",)),
        ("zabytki@1421", False, ("zabytki@1421",)),
    ]
    assert interfaces[0].queues == RegisterQueues("legacy.alkohol.in", "legacy.alkohol.out")
    assert interfaces[0].offices == ("146501_1", "1421")


def test_an_interface_is_shared_only_when_neither_template_names_the_office():
    assert is_shared(endpoint(**SHARED))
    assert not is_shared(endpoint())
    # Per-office documents answered on one queue: an interface per office.
    assert not is_shared(endpoint(queue_in="wkz.{office}.wnioski", queue_out="wkz.odp"))


def test_two_systems_on_the_same_queue_names_are_two_interfaces():
    # Templates without {system}: the queues are shared, the systems stay apart.
    one_queue = {"queue_in": "rejestry.in", "queue_out": "rejestry.out"}
    interfaces = register_interfaces(
        [endpoint("1421", "alkohol", **one_queue), endpoint("1421", "zabytki", **one_queue)]
    )

    assert [i.name for i in interfaces] == ["alkohol", "zabytki"]


def test_each_answers_queue_is_drained_once_for_every_endpoint_answering_on_it():
    per_office_documents = {"queue_in": "wkz.{office}.wnioski", "queue_out": "wkz.odp"}
    interfaces = register_interfaces(
        [endpoint(office, "alkohol", **SHARED) for office in ("146501_1", "1421")]
        + [endpoint(office, "zabytki", **per_office_documents) for office in ("146501_1", "1421")]
    )

    queues = answer_queues(interfaces)

    assert queues == [
        AnswersQueue("legacy.alkohol.out", frozenset({"alkohol@146501_1", "alkohol@1421"})),
        AnswersQueue("wkz.odp", frozenset({"zabytki@146501_1", "zabytki@1421"})),
    ]
    assert queues[0].parked == "legacy.alkohol.out.parked"


ALCOHOL_ANSWERS = AnswersQueue("legacy.alkohol.out", frozenset({"alkohol@146501_1"}))


def test_an_answer_is_filed_only_about_a_document_sent_through_its_own_interface():
    envelope_id = str(uuid.uuid4())

    assert (
        why_not_answerable_here(envelope_id, {"eod@146501_1", "alkohol@146501_1"}, ALCOHOL_ANSWERS)
        is None
    )
    never = why_not_answerable_here(envelope_id, set(), ALCOHOL_ANSWERS)
    other_system = why_not_answerable_here(envelope_id, {"drogi@1421"}, ALCOHOL_ANSWERS)
    other_office = why_not_answerable_here(envelope_id, {"alkohol@1421"}, ALCOHOL_ANSWERS)

    assert never == f"the hub sent no document {envelope_id}"
    assert other_system is not None
    assert "drogi@1421" in other_system
    assert "legacy.alkohol.out" in other_system
    assert other_office is not None
    assert "alkohol@1421" in other_office


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
