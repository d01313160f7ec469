import uuid

import pika
import pytest

from hub.broker.codec import CORRELATION_HEADER, from_amqp, header, to_amqp
from hub.broker.topology import Lane, Topology
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
    topology = Topology("hub", shards=2, delays_s=(10, 60))
    assert topology.accepted_queue == "hub.accepted"
    assert topology.accepted_queues == ["hub.accepted", "hub.accepted.bulk"]
    assert topology.accepted_key_in(Lane.BULK) == "accepted.bulk"
    assert topology.delivery_queue("eod@146501_1") in {"hub.deliver.0", "hub.deliver.1"}
    assert topology.delivery_queue("eod@146501_1", Lane.BULK).startswith("hub.bulk.")
    assert topology.delay_queue(60) == "hub.delay.60s"
    assert topology.dead_letter_queue == "hub.dead"
    assert Topology("test-x", shards=1).delivery_key("eod@14") == "deliver.0"


def test_the_number_of_queues_does_not_grow_with_the_region():
    topology = Topology("hub", shards=4, delays_s=(1, 5, 10, 30, 60, 600, 3600))
    endpoints = [f"eod@{office}" for office in range(5000)]
    used = {topology.delivery_queue(endpoint) for endpoint in endpoints}
    assert len(topology.queues) == 2 + 2 * 4 + 7 + 1
    assert used == {f"hub.deliver.{shard}" for shard in range(4)}
    assert set(topology.delivery_queues) >= used


def test_an_endpoint_keeps_its_shard_across_topologies_of_one_size():
    # Every process must send an endpoint's deliveries to the same shard (crc32, not
    # Python's per-process salted hash).
    assert Topology("a", shards=8).shard_of("eod@146501_1") == Topology("b", shards=8).shard_of(
        "eod@146501_1"
    )
    spread = {Topology(shards=8).shard_of(f"eod@{office}") for office in range(200)}
    assert spread == set(range(8))


def test_envelope_ids_are_uuids_on_the_wire():
    envelope = Envelope(document_type="t", source="s", destination=Address("14"), body=b"x")
    properties, _ = to_amqp(envelope, "m")
    assert uuid.UUID(properties.headers["hub-envelope-id"]) == envelope.envelope_id
