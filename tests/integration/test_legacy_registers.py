"""Registers over RabbitMQ: published once with confirms, answered on their own, filed once.

The register simulator is a real AMQP peer on the real broker, connected as each
interface's own user (``hub amqp-tenant``) in a fresh vhost per test; the hub, as its own
user, reaches the registers' queues through a cuttable TCP proxy, so a test can take that
broker away. The interfaces are per office unless a test asks for its systems' shared
ones (``templates`` = ``SHARED``: one queue pair per system, whatever the offices).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pika
import pytest
from legacy_support import delivery_of, document, every_message_retried, submit, write_region
from support import OFFICES
from tenant_support import create_vhost, in_vhost, remove_vhost_and_tenants

from adapters.registers.interface import ACK_KIND, REFUSAL_KIND, STATUS_KIND, RegisterQueues
from adapters.registers.outbound import RegistersAmqpOutbound
from adapters.registers.tenants import (
    Rabbitmqctl,
    Tenant,
    TenantAccounts,
    region_tenant,
    region_tenants,
)
from hub.errors import TransientDeliveryError
from hub.inbound import accept_into
from hub.poller import Poller
from hub.region import load_region
from hub.store.models import CaseEventRow, ReceiptRow
from simulators.registers.peer import Fault, FaultKind, Interface, RegisterSimulator
from simulators.tcp_proxy import CuttableProxy

ALCOHOL_PERMIT = "urn:hub:legacy:zezwolenie-alkoholowe:1"
MONUMENT = "urn:hub:legacy:rejestr-zabytkow:1"
BODY = b'<w:Wniosek xmlns:w="urn:hub:legacy:zezwolenie-alkoholowe:1"><w:Kat>A</w:Kat></w:Wniosek>'
WARSAW, COUNTY = OFFICES[0][0], OFFICES[1][0]
QUEUE_PREFIX = "test.legacy"
PER_OFFICE = {
    "queue_in": f"{QUEUE_PREFIX}.{{system}}.{{office}}.in",
    "queue_out": f"{QUEUE_PREFIX}.{{system}}.{{office}}.out",
}
SHARED = {
    "queue_in": f"{QUEUE_PREFIX}.{{system}}.in",
    "queue_out": f"{QUEUE_PREFIX}.{{system}}.out",
}


@pytest.fixture
def proxy():
    proxy = CuttableProxy("127.0.0.1", 5672)
    yield proxy
    proxy.close()


@pytest.fixture
def vhost(amqp_url):
    """The registers' vhost of this test; removed after it, with the tenants made in it."""
    name = f"test-registers-{uuid.uuid4().hex[:10]}"
    create_vhost(Rabbitmqctl(), name, pika.URLParameters(amqp_url).credentials.username)
    made: list[Tenant] = []
    yield name, made
    remove_vhost_and_tenants(name, made)


@pytest.fixture
def registers_url(amqp_url, vhost):
    """The registers' broker as the hub's own user reaches it directly."""
    return in_vhost(amqp_url, vhost[0])


@pytest.fixture
def templates():
    """The registers' queue templates: one interface per office (parametrize for SHARED)."""
    return PER_OFFICE


@pytest.fixture
def region_path(tmp_path, proxy, vhost, registers_url, templates):
    through_proxy = in_vhost(f"amqp://guest:guest@127.0.0.1:{proxy.port}/", vhost[0])
    options = dict(templates)
    return write_region(
        tmp_path / "region.toml",
        systems=[
            {"name": "alkohol", "kind": "registers-amqp", "url": through_proxy, "options": options},
            {
                "name": "zabytki",
                "kind": "registers-amqp",
                "url": through_proxy,
                "offices": [COUNTY],
                "options": options,
            },
        ],
        routes=[
            {"name": "permits", "document_type": ALCOHOL_PERMIT, "target_system": "alkohol"},
            {"name": "monuments", "document_type": MONUMENT, "target_system": "zabytki"},
        ],
        inbound=[
            {
                "name": "registers-answers",
                "kind": "registers-answers",
                "url": registers_url,
                "systems": ["alkohol", "zabytki"],
            }
        ],
    )


@pytest.fixture
def tenant_urls(region_path, vhost, amqp_url):
    """Each register interface's own user (made with its interface), as a broker URL, by
    the tenant's key (``system@office``, or ``system`` for a shared interface)."""
    tenants = region_tenants(load_region(region_path))
    vhost[1].extend(tenants)
    return {
        item.tenant.key: in_vhost(amqp_url, vhost[0], item.tenant.user, item.password)
        # Rotated: users of these names may be left from a demo run on the same broker
        # (RabbitMQ's users are not per vhost), and the test must know their passwords.
        for item in TenantAccounts(Rabbitmqctl()).add(tenants, rotate=True)
    }


@pytest.fixture
def register(region_path, tenant_urls, registers_url):
    interfaces = [
        Interface(
            tenant.queues.documents,
            tenant.queues.answers,
            tenant.system.upper()[:3],
            amqp_url=tenant_urls[tenant.key],
            office=tenant.office,
        )
        for tenant in region_tenants(load_region(region_path))
    ]
    # The simulator's own URL is the hub's user: a register that used it would not notice.
    simulator = RegisterSimulator(registers_url, interfaces)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def depth(registers_url):
    """How many messages a register queue holds (read by the hub's user)."""

    def depth(queue):
        connection = pika.BlockingConnection(pika.URLParameters(registers_url))
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()

    return depth


class LosesFirstConfirm:
    """The adapter, except that the first confirm is 'lost': the publish happened, the
    worker is told it failed, and retries."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.lost = False

    def setup(self):
        self.adapter.setup()

    def stop(self):
        self.adapter.stop()

    def deliver(self, envelope):
        receipt = self.adapter.deliver(envelope)
        if not self.lost:
            self.lost = True
            raise TransientDeliveryError("the broker's confirm was lost on the way")
        return receipt


def receipts(hub, message_id=None):
    with hub.store.session() as session:
        query = session.query(ReceiptRow)
        if message_id is not None:
            query = query.filter(ReceiptRow.message_id == message_id)
        return list(query.order_by(ReceiptRow.id))


def poll_until(hub, condition, what):
    """Poll the region's inbound channels (the answers among them) until ``condition``."""
    poller = Poller(hub.store, hub.region, hub.settings, f"poller-{uuid.uuid4()}")
    accept = accept_into(hub.store)
    try:
        hub.wait_for(lambda: poller.poll_round(accept) >= 0 and condition(), what=what)
    finally:
        for channel in poller._channels:
            channel.stop()


def late(hub):
    """Deliveries whose acknowledgement would be late once the receipt deadline passed."""
    after_deadline = datetime.now(UTC) + timedelta(seconds=hub.settings.receipt_deadline_s + 60)
    return {item.message_id for item in hub.store.late_receipts(after_deadline)}


def test_each_document_is_registered_once_and_its_acknowledgement_filed_once(hub, register):
    assert register.connections == 3  # one per office's register, each its own user
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, document(office, ALCOHOL_PERMIT, BODY)) for office, _, _ in OFFICES]
    sent.append(submit(hub, document(COUNTY, MONUMENT, BODY)))

    messages = hub.wait_until_settled(len(sent))
    assert {row.status for row in messages} == {"delivered"}
    assert delivery_of(hub, sent[2]).external_reference.endswith(f".zabytki.{COUNTY}.in")
    assert {delivery_of(hub, m).awaited_receipt for m in sent} == {ACK_KIND}
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")

    received = register.state.received()
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())
    for message_id in sent:
        [receipt] = receipts(hub, message_id)
        assert receipt.kind == ACK_KIND
        assert json.loads(receipt.document)["register_number"] == received[message_id]["number"]
    assert late(hub) == set()


def test_a_document_published_again_after_a_lost_confirm_is_registered_and_filed_once(
    hub, register, depth
):
    endpoint = hub.region.endpoints[f"alkohol@{COUNTY}"]
    losing = LosesFirstConfirm(RegistersAmqpOutbound(endpoint, hub.settings))
    losing.setup()
    hub.start_relay()
    hub.start_worker(adapters={endpoint.name: losing})
    message_id = submit(hub, document(COUNTY, ALCOHOL_PERMIT, BODY))

    [message] = hub.wait_until_settled(1)
    assert message.status == "delivered"
    assert [a.outcome for a in hub.attempts(message_id)] == ["retry", "delivered"]
    hub.wait_for(lambda: register.state.stats()["answers_sent"] == 2, what="both answered")
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the acknowledgement filed")

    stats = register.state.stats()
    assert (stats["arrivals"], stats["registered"], stats["repeated_keys"]) == (2, 1, 1)
    assert [r.kind for r in receipts(hub, message_id)] == [ACK_KIND]
    poll_until(hub, lambda: depth(endpoint_answers(hub)) == 0, "the answers drained")
    assert len(receipts(hub, message_id)) == 1


def endpoint_answers(hub):
    return RegisterQueues.of(hub.region.endpoints[f"alkohol@{COUNTY}"]).answers


def test_while_the_register_is_down_documents_wait_in_its_queue_and_are_answered_later(
    hub, register, depth
):
    register.set_down(True)
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, document(office, ALCOHOL_PERMIT, BODY)) for office, _, _ in OFFICES * 2]

    messages = hub.wait_until_settled(len(sent))
    assert {row.status for row in messages} == {"delivered"}  # the queue took them
    queues = [RegisterQueues.of(e) for e in hub.region.endpoints.values() if e.system == "alkohol"]
    assert sum(depth(q.documents) for q in queues) == len(sent)
    assert late(hub) == set(sent)  # no acknowledgement yet: late once the deadline passes

    register.set_down(False)
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")
    assert late(hub) == set()
    assert all(entry["count"] == 1 for entry in register.state.received().values())


def test_while_the_registers_broker_is_unreachable_deliveries_retry_then_flow_none_lost(
    hub, register, proxy
):
    proxy.cut()
    patient = hub.settings.replace(max_attempts=30, breaker_cool_down_s=1.0)
    hub.start_relay()
    hub.start_worker(settings=patient)
    sent = [submit(hub, document(office, ALCOHOL_PERMIT, BODY)) for office, _, _ in OFFICES]

    hub.wait_for(lambda: every_message_retried(hub, sent), what="every document to be retried")
    retried = [a for message_id in sent for a in hub.attempts(message_id) if a.outcome == "retry"]
    assert all("unreachable" in attempt.error_text for attempt in retried)
    proxy.restore()

    messages = hub.wait_until_settled(len(sent), timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")
    assert all(entry["count"] == 1 for entry in register.state.received().values())
    assert set(register.state.received()) == set(sent)


def test_a_refusal_is_filed_with_its_reason_and_the_acknowledgement_stays_awaited(hub, register):
    register.arm(Fault(FaultKind.REFUSE, times=1, reason="Brak opinii komisji"))
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(WARSAW, ALCOHOL_PERMIT, BODY))

    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the refusal filed")

    [receipt] = receipts(hub, message_id)
    assert receipt.kind == REFUSAL_KIND
    assert json.loads(receipt.document)["reason"] == "Brak opinii komisji"
    assert late(hub) == {message_id}


def test_status_changes_are_filed_once_each_with_a_case_event(hub, register):
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(WARSAW, ALCOHOL_PERMIT, BODY))
    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the acknowledgement filed")

    for status in ("w-rozpatrzeniu", "w-rozpatrzeniu", "wydano-decyzje"):
        register.report_status(message_id, status)
    hub.wait_for(lambda: register.state.stats()["answers_sent"] == 4, what="statuses sent")
    poll_until(hub, lambda: len(receipts(hub)) == 3, "both statuses filed")

    statuses = [json.loads(r.document)["status"] for r in receipts(hub) if r.kind == STATUS_KIND]
    assert statuses == ["w-rozpatrzeniu", "wydano-decyzje"]
    with hub.store.session() as session:
        events = [row.event for row in session.query(CaseEventRow).order_by(CaseEventRow.id)]
    assert events.count(f"receipt {STATUS_KIND}") == 2


def answer_as(tenant_url, exchange, answers):
    """Publish ``answers`` (answer id → body) as a register, through its answers exchange."""
    connection = pika.BlockingConnection(pika.URLParameters(tenant_url))
    channel = connection.channel()
    channel.confirm_delivery()
    for answer_id, body in answers.items():
        channel.basic_publish(
            exchange,
            "",
            body,
            pika.BasicProperties(message_id=answer_id, delivery_mode=2),
            mandatory=True,
        )
    connection.close()


def parked_reasons(registers_url, queue, count):
    connection = pika.BlockingConnection(pika.URLParameters(registers_url))
    channel = connection.channel()
    reasons = []
    for _ in range(count):
        _method, properties, _body = channel.basic_get(queue, auto_ack=True)
        reasons.append(properties.headers["hub-park-reason"])
    connection.close()
    return reasons


def acknowledgement(envelope_id):
    values = {"kind": "acknowledgement", "envelope_id": envelope_id, "register_number": "F/1"}
    return json.dumps(values).encode()


def test_an_answer_the_hub_cannot_file_is_parked_with_its_reason(
    hub, register, tenant_urls, registers_url, depth
):
    queues = RegisterQueues.of(hub.region.endpoints[f"alkohol@{WARSAW}"])
    # Sent as Warsaw's register, through the only door its user has.
    stranger = acknowledgement(str(uuid.uuid4()))
    answer_as(
        tenant_urls[f"alkohol@{WARSAW}"],
        queues.answers_exchange,
        {"a-1": stranger, "a-2": b"not json"},
    )

    poll_until(hub, lambda: depth(queues.parked) == 2, "both answers parked")

    reasons = parked_reasons(registers_url, queues.parked, 2)
    assert any("the hub sent no document" in reason for reason in reasons)
    assert any("not JSON" in reason for reason in reasons)
    assert receipts(hub) == []


def test_an_offices_register_cannot_answer_for_another_offices_document(
    hub, register, tenant_urls, registers_url, depth
):
    hub.start_relay()
    hub.start_worker()
    county_permit = submit(hub, document(COUNTY, ALCOHOL_PERMIT, BODY))
    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the county's acknowledgement filed")
    warsaw = RegisterQueues.of(hub.region.endpoints[f"alkohol@{WARSAW}"])

    # Warsaw's register, on its own interface, about the county's permit.
    answer_as(
        tenant_urls[f"alkohol@{WARSAW}"],
        warsaw.answers_exchange,
        {"forged-1": acknowledgement(county_permit)},
    )
    poll_until(hub, lambda: depth(warsaw.parked) == 1, "the answer parked")

    [reason] = parked_reasons(registers_url, warsaw.parked, 1)
    assert f"went to alkohol@{COUNTY}" in reason
    assert warsaw.answers in reason
    assert "forged-1" not in [r.external_id for r in receipts(hub, county_permit)]
    assert len(receipts(hub, county_permit)) == 1


@pytest.mark.parametrize("templates", [SHARED])
def test_a_shared_interface_serves_every_office_of_its_system_over_one_connection(
    hub, register, depth
):
    assert register.connections == 2  # one per system, each as its own user
    hub.start_relay()
    hub.start_worker()
    sent = {submit(hub, document(office, ALCOHOL_PERMIT, BODY)): office for office, _, _ in OFFICES}
    monument = submit(hub, document(COUNTY, MONUMENT, BODY))

    messages = hub.wait_until_settled(len(sent) + 1)
    assert {row.status for row in messages} == {"delivered"}
    assert delivery_of(hub, monument).external_reference == f"{QUEUE_PREFIX}.zabytki.in"
    assert {delivery_of(hub, m).external_reference for m in sent} == {f"{QUEUE_PREFIX}.alkohol.in"}
    poll_until(hub, lambda: len(receipts(hub)) == len(sent) + 1, "every acknowledgement filed")

    received = register.state.received()
    assert all(entry["count"] == 1 for entry in received.values())
    for message_id, office in sent.items():
        [receipt] = receipts(hub, message_id)
        number = json.loads(receipt.document)["register_number"]
        assert number == received[message_id]["number"]
        assert number.startswith(f"ALK/{office}/")  # registered for the document's office
    assert register.state.stats()["registered_by_office"] == {WARSAW: 1, COUNTY: 2}
    alcohol = region_tenant(hub.region, "alkohol")
    assert depth(alcohol.queues.documents) == depth(alcohol.queues.answers) == 0
    assert late(hub) == set()


@pytest.mark.parametrize("templates", [SHARED])
def test_a_shared_interface_cannot_answer_for_another_systems_document(
    hub, register, tenant_urls, registers_url, depth
):
    hub.start_relay()
    hub.start_worker()
    monument = submit(hub, document(COUNTY, MONUMENT, BODY))
    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the monument's acknowledgement filed")
    alcohol = region_tenant(hub.region, "alkohol").queues

    # The alcohol register, which serves the county too, about the county's monument.
    answer_as(
        tenant_urls["alkohol"], alcohol.answers_exchange, {"forged-1": acknowledgement(monument)}
    )
    poll_until(hub, lambda: depth(alcohol.parked) == 1, "the answer parked")

    [reason] = parked_reasons(registers_url, alcohol.parked, 1)
    assert f"went to zabytki@{COUNTY}" in reason
    assert f"answers on {alcohol.answers}" in reason
    assert len(receipts(hub, monument)) == 1
