"""Nothing lost, nothing doubled: broker outages, crashes around commits, retries, dead letters."""

from __future__ import annotations

import time

import pytest

from adapters.eod.outbound import EodRestOutbound
from hub.broker.codec import to_amqp
from hub.broker.connection import close_quietly, connect
from hub.envelope import Address, Envelope
from hub.store.models import AuditRow
from hub.workers import ENDPOINT_HEADER
from simulators.tcp_proxy import CuttableProxy

# A simulated crash ends its worker thread with an exception pytest reports; that is the point.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the hub catches it."""


def crash_once_after(handler_matches, crashes):
    """Wrap a consumer handler so that, once, it 'dies' right after the wrapped work."""

    def wrap(handler):
        def handle(message, publisher):
            handler(message, publisher)
            if handler_matches(message) and not crashes:
                crashes.append(message.message_id)
                raise SimulatedCrash

        return handle

    return wrap


def test_documents_accepted_while_the_broker_is_down_are_delivered_once_it_returns(
    hub, eod, enqueue_filings
):
    proxy = CuttableProxy("127.0.0.1", 5672)
    through_proxy = hub.settings.replace(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    try:
        proxy.cut()
        hub.start_relay(through_proxy)
        hub.start_worker(through_proxy)
        submitted = enqueue_filings(5)

        assert hub.poll() == submitted
        time.sleep(1.5)
        assert {row.status for row in hub.messages()} == {"accepted"}
        assert hub.store.count_unsent_outbox() == submitted

        proxy.restore()
        messages = hub.wait_until_settled(submitted, timeout_s=60)
        assert {row.status for row in messages} == {"delivered"}
        assert all(entry["count"] == 1 for entry in eod.admin("GET", "/_sim/received").values())
        assert len(eod.admin("GET", "/_sim/received")) == submitted
    finally:
        proxy.close()


def test_the_broker_dropping_every_connection_mid_flow_loses_and_doubles_nothing(
    hub, eod, enqueue_filings
):
    proxy = CuttableProxy("127.0.0.1", 5672)
    through_proxy = hub.settings.replace(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    try:
        hub.start_relay(through_proxy)
        hub.start_worker(through_proxy)
        submitted = enqueue_filings(25)
        hub.poll()
        hub.wait_for(
            lambda: any(row.status == "delivered" for row in hub.messages()), what="first delivery"
        )
        proxy.cut()
        time.sleep(1.0)
        proxy.restore()

        messages = hub.wait_until_settled(submitted, timeout_s=90)
        assert {row.status for row in messages} == {"delivered"}
        registrations = eod.admin("GET", "/_sim/stats")
        assert registrations["registered"] == submitted
        arrivals = eod.admin("GET", "/_sim/received")
        assert set(arrivals) == {row.id for row in messages}
    finally:
        proxy.close()


def test_a_consumer_killed_between_commit_and_ack_does_not_double_the_delivery(
    hub, eod, enqueue_filings
):
    crashes: list[str] = []
    delivery_prefix = f"{hub.settings.queue_prefix}.deliver."
    hub.start_relay()
    crashed_worker = hub.start_worker(
        wrap=crash_once_after(lambda m: m.queue.startswith(delivery_prefix), crashes)
    )
    enqueue_filings(1)
    hub.poll()
    hub.wait_for(lambda: bool(crashes), what="the worker to crash after its commit")
    crashed_worker.stop_requested.set()

    hub.start_worker()
    messages = hub.wait_until_settled(2)

    crashed_id = hub.message_of_delivery(crashes[0])
    assert {row.status for row in messages} == {"delivered"}
    assert eod.admin("GET", "/_sim/received")[crashed_id]["count"] == 1
    assert [(a.number, a.outcome) for a in hub.attempts(crashed_id)] == [(1, "delivered")]
    for endpoint in hub.region.endpoints:
        hub.wait_for(
            lambda e=endpoint: hub.queue_depth(hub.topology.delivery_queue(e)) == 0,
            what="queues drained",
        )


class DiesAfterDelivering:
    """An EOD adapter whose process 'dies' once right after the EOD took the document."""

    def __init__(self, real: EodRestOutbound) -> None:
        self.real = real
        self.died = False

    def setup(self) -> None:
        self.real.setup()

    def stop(self) -> None:
        self.real.stop()

    def deliver(self, envelope):
        receipt = self.real.deliver(envelope)
        if not self.died:
            self.died = True
            raise SimulatedCrash
        return receipt


def test_a_worker_dying_before_its_commit_redelivers_under_the_same_idempotency_key(
    hub, eod, enqueue_filings
):
    dying = DiesAfterDelivering(EodRestOutbound(hub.region.endpoints["eod@1421"], hub.settings))
    dying.setup()
    hub.start_relay()
    crashed_worker = hub.start_worker(adapters={"eod@1421": dying})
    enqueue_filings(1)
    hub.poll()
    hub.wait_for(lambda: dying.died, what="the worker to die mid-delivery")
    crashed_worker.stop_requested.set()
    hub.start_worker()

    messages = hub.wait_until_settled(2, timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    stats = eod.admin("GET", "/_sim/stats")
    assert stats["registered"] == 2  # nothing registered twice ...
    assert stats["repeated_keys"] == 1  # ... though one document arrived twice, under the same key
    county = next(row for row in messages if row.destination == "1421")
    assert [a.outcome for a in hub.attempts(county.id)] == ["abandoned", "delivered"]


def test_a_transient_failure_is_retried_through_the_delay_queues_then_delivered(
    hub, eod, enqueue_filings
):
    eod.admin("POST", "/_sim/faults", json={"kind": "http503", "times": 2})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()

    messages = hub.wait_until_settled(2, timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    outcomes = sorted([a.outcome for a in hub.attempts(row.id)] for row in messages)
    assert sorted(map(tuple, outcomes)) in (
        [("delivered",), ("retry", "retry", "delivered")],
        [("retry", "delivered"), ("retry", "delivered")],
    )
    failed = [a for row in messages for a in hub.attempts(row.id) if a.outcome == "retry"]
    assert all(
        a.error_class == "TransientDeliveryError" and "HTTP 503" in a.error_text for a in failed
    )


def test_a_permanent_refusal_is_dead_lettered_with_its_reason(hub, eod, enqueue_filings):
    eod.admin("POST", "/_sim/faults", json={"kind": "http400", "times": 1})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()

    messages = hub.wait_until_settled(2)
    dead = [row for row in messages if row.status == "dead"]
    assert len(dead) == 1
    assert [a.outcome for a in hub.attempts(dead[0].id)] == ["dead"]
    hub.wait_for(
        lambda: hub.queue_depth(hub.topology.dead_letter_queue) == 1, what="one dead letter"
    )
    connection = connect(hub.settings.amqp_url)
    try:
        method, properties, _body = connection.channel().basic_get(
            hub.topology.dead_letter_queue, auto_ack=True
        )
        assert method is not None
        assert properties.headers["hub-dead-reason"].startswith("delivery-permanent: eod@")
        assert "HTTP 400" in properties.headers["hub-dead-reason"]
    finally:
        close_quietly(connection)


def test_a_message_that_always_breaks_its_worker_is_parked_after_the_delivery_limit(hub):
    # A delivery message whose delivery the store has never heard of, carrying garbage
    # the handler chokes on every time: it must end in the dead-letter queue.
    def always_fail(handler):
        def handle(message, publisher):
            raise RuntimeError("the handler cannot cope with this message")

        return handle

    hub.start_worker(wrap=always_fail)
    envelope = Envelope(
        document_type="x", source="test", destination=Address("146501_1"), body=b"<a/>"
    )
    properties, body = to_amqp(envelope, "poison-1", {ENDPOINT_HEADER: "eod@146501_1"})
    connection = connect(hub.settings.amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            hub.topology.exchange,
            hub.topology.delivery_key("eod@146501_1"),
            body,
            properties,
            mandatory=True,
        )
    finally:
        close_quietly(connection)
    hub.wait_for(
        lambda: hub.queue_depth(hub.topology.dead_letter_queue) == 1,
        timeout_s=30,
        what="the poison message to be parked",
    )
    assert hub.queue_depth(hub.topology.delivery_queue("eod@146501_1")) == 0


def test_a_429_is_retried_no_sooner_than_its_retry_after(hub, eod, enqueue_filings):
    eod.admin("POST", "/_sim/faults", json={"kind": "http429", "times": 1, "retry_after_s": 2})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()

    messages = hub.wait_until_settled(2, timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    throttled = next(row for row in messages if len(hub.attempts(row.id)) == 2)
    first, second = hub.attempts(throttled.id)
    assert (first.outcome, second.outcome) == ("retry", "delivered")
    assert "HTTP 429" in first.error_text
    # The delay queue holds it for the tier that covers Retry-After (2 s), never less.
    assert (second.started_at - first.finished_at).total_seconds() >= 2


def test_a_dead_delivery_replayed_is_delivered_once_and_the_replay_is_on_record(
    hub, eod, enqueue_filings
):
    eod.admin("POST", "/_sim/faults", json={"kind": "http400", "times": 1})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()
    messages = hub.wait_until_settled(2)
    [dead] = [row for row in messages if row.status == "dead"]
    [parked] = hub.store.dead_deliveries()
    assert parked.message_id == dead.id
    assert "HTTP 400" in parked.last_error

    assert hub.store.replay_delivery(parked.delivery_id, "operator-anna", "EOD fixed") == dead.id
    assert hub.store.replay_delivery(parked.delivery_id, "operator-jan", "twice") is None

    hub.wait_for(lambda: hub.store.message_status(dead.id).value == "delivered", what="the replay")
    assert [a.outcome for a in hub.attempts(dead.id)] == ["dead", "delivered"]
    assert eod.admin("GET", "/_sim/received")[dead.id]["count"] == 1
    assert hub.store.dead_deliveries() == []
    with hub.store.session() as session:
        [replayed] = session.query(AuditRow).filter_by(message_id=dead.id, event="replayed").all()
    assert '"actor": "operator-anna"' in replayed.details
    assert '"reason": "EOD fixed"' in replayed.details
