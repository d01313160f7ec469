import uuid

import pika
import pytest

from hub.broker.codec import CORRELATION_HEADER, from_amqp, header, to_amqp
from hub.broker.topology import Topology
from hub.envelope import Address, Envelope


def test_an_envelope_survives_the_trip_through_amqp_properties():
    envelope = Envelope(
        document_type="http://crd.gov.pl/wzor/2013/12/12/1410/",
        source="epuap",
        destination=Address("146501_1", "eod"),
        body=b"<wnio:Dokument/>",
        correlation_id="case-1",
        headers={"epuap-mailbox": "/umwarszawa/skrytka"},
    )
    properties, body = to_amqp(envelope, "delivery-1", {"hub-endpoint": "eod@146501_1"})

    assert properties.message_id == "delivery-1"
    assert properties.delivery_mode == pika.DeliveryMode.Persistent.value
    assert properties.headers[CORRELATION_HEADER] == "case-1"
    assert header(properties, "hub-endpoint") == "eod@146501_1"
    assert from_amqp(properties, body) == envelope


def test_headers_sent_as_bytes_by_other_clients_are_read_as_text():
    envelope = Envelope(document_type="t", source="s", destination=Address("14"), body=b"x")
    properties, body = to_amqp(envelope, "m")
    properties.headers = {key: str(value).encode() for key, value in properties.headers.items()}
    assert from_amqp(properties, body).envelope_id == envelope.envelope_id


def test_a_message_without_hub_headers_is_refused():
    with pytest.raises(KeyError):
        from_amqp(pika.BasicProperties(headers={}), b"x")


def test_queue_names_follow_the_prefix():
    topology = Topology("hub")
    assert topology.accepted_queue == "hub.accepted"
    assert topology.delivery_queue("eod@146501_1") == "hub.deliver.eod@146501_1"
    assert topology.delay_queue(60) == "hub.delay.60s"
    assert topology.dead_letter_queue == "hub.dead"
    assert Topology("test-x").delivery_key("eod@14") == "deliver.eod@14"


def test_envelope_ids_are_uuids_on_the_wire():
    envelope = Envelope(document_type="t", source="s", destination=Address("14"), body=b"x")
    properties, _ = to_amqp(envelope, "m")
    assert uuid.UUID(properties.headers["hub-envelope-id"]) == envelope.envelope_id
