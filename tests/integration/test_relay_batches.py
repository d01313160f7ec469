"""The relay marks sent what the broker confirmed: cut off, killed or refused, none is lost."""

from __future__ import annotations

import collections
import os
import time
import uuid

import pytest
from relay_support import (
    ReplyHoldingProxy,
    accept_documents,
    add_outbox_row,
    drain,
    queue_depth,
    unsent_rows,
)

from hub.audit import AuditChain
from hub.broker.connection import close_quietly, connect
from hub.broker.publisher import ConfirmingPublisher, PublishRefused
from hub.relay import OutboxRelay
from simulators.processes import ChildProcess, start_hub_process

# The relay thread cut off mid-batch logs its pause; a killed relay process is the point.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def proxied(hub, proxy):
    return hub.settings.replace(amqp_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")


def assert_each_document_queued_with_its_own_id(messages, document_ids, copies):
    """Every document is on the queue, each copy under its own envelope's id, same body."""
    by_id = collections.defaultdict(list)
    for message in messages:
        assert message.message_id == message.envelope_id
        by_id[message.message_id].append(message.body)
    assert set(by_id) == set(document_ids)
    for document_id, bodies in by_id.items():
        assert len(set(bodies)) == 1, f"{document_id} queued with different bodies"
        assert len(bodies) == copies.get(document_id, 1)


def published_unconfirmed(hub) -> int:
    """Wait until the relay's batch reached the broker (its confirms held); how many so far.

    The relay publishes what it found at its last look and then waits for those confirms,
    so with the replies held it publishes one batch (the rows committed by then) and no more.
    """
    queue = hub.topology.accepted_queue
    hub.wait_for(lambda: hub.queue_depth(queue) > 1, what="the batch to be queued")
    return hub.queue_depth(queue) - 1


def assert_republished_once_each(messages, warm_up, held, published):
    """Nothing lost; what was queued before the cut is queued again, under its own id."""
    copies = collections.Counter(message.message_id for message in messages)
    assert set(copies.values()) <= {1, 2}
    twice = [document for document, count in copies.items() if count == 2]
    assert len(twice) >= published >= 1  # more of the batch may have landed after the look
    assert warm_up not in twice
    assert len(messages) == 1 + len(held) + len(twice)
    assert_each_document_queued_with_its_own_id(messages, [warm_up, *held], copies)


def test_rows_published_but_not_confirmed_when_the_link_drops_are_published_again(hub):
    proxy = ReplyHoldingProxy("127.0.0.1", 5672)
    try:
        hub.start_relay(proxied(hub, proxy))
        [warm_up] = accept_documents(hub.store, 1)
        hub.wait_for(lambda: not unsent_rows(hub.store), what="the relay to be running")

        proxy.hold_replies()
        held = accept_documents(hub.store, 20)
        published = published_unconfirmed(hub)
        # Queued by the broker, but the relay has not seen one confirm: nothing is sent.
        assert [row[1] for row in unsent_rows(hub.store)] == held

        proxy.cut()
        proxy.release_replies()
        proxy.restore()
        hub.wait_for(lambda: not unsent_rows(hub.store), what="the rows to be sent again")
    finally:
        proxy.close()

    messages = drain(hub.settings.amqp_url, hub.topology.accepted_queue)
    assert_republished_once_each(messages, warm_up, held, published)


def start_relay_process(hub, tmp_path, name: str, amqp_url: str) -> ChildProcess:
    env = {
        "HUB_DATABASE_URL": hub.settings.database_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_QUEUE_PREFIX": hub.settings.queue_prefix,
        "HUB_REGION_PATH": str(hub.settings.region_path),
        "HUB_VAR_DIR": str(tmp_path),
        "HUB_RETRY_DELAYS_S": ",".join(str(delay) for delay in hub.settings.retry_delays_s),
        "HUB_SINGLETON_LEASE_S": "2",
        "HUB_RELAY_IDLE_S": str(hub.settings.relay_idle_s),
        "HUB_LOG_LEVEL": "warning",
    }
    return start_hub_process(name, ["relay"], env, tmp_path / "logs")


def test_a_relay_process_killed_between_publish_and_confirm_loses_nothing(hub, tmp_path):
    proxy = ReplyHoldingProxy("127.0.0.1", 5672)
    first = second = None
    try:
        first = start_relay_process(hub, tmp_path, "relay-1", proxied(hub, proxy).amqp_url)
        [warm_up] = accept_documents(hub.store, 1)
        hub.wait_for(lambda: not unsent_rows(hub.store), what="the first relay to be running")

        proxy.hold_replies()
        held = accept_documents(hub.store, 30)
        published = published_unconfirmed(hub)
        assert [row[1] for row in unsent_rows(hub.store)] == held

        first.process.send_signal(9)  # killed before a single confirm reached it
        first.process.wait(10)
        second = start_relay_process(hub, tmp_path, "relay-2", hub.settings.amqp_url)
        hub.wait_for(lambda: not unsent_rows(hub.store), 60, "the second relay to send them")
    finally:
        for relay in (first, second):
            if relay is not None:
                relay.stop()
        proxy.close()

    messages = drain(hub.settings.amqp_url, hub.topology.accepted_queue)
    assert_republished_once_each(messages, warm_up, held, published)


def test_a_batch_with_an_unroutable_row_marks_the_others_sent_and_leaves_that_one(hub):
    documents = accept_documents(hub.store, 4)
    stray = add_outbox_row(hub.store, documents[1], "deliver.nowhere@00")
    documents += accept_documents(hub.store, 2)
    relay = OutboxRelay(hub.store, hub.settings, hub.topology, f"relay-{uuid.uuid4()}")
    connection = connect(hub.settings.amqp_url)
    try:
        publisher = ConfirmingPublisher(connection, hub.settings.amqp_url)
        with pytest.raises(PublishRefused, match=r"1 row\(s\) unroutable.*other 6 of the batch"):
            relay.relay_batch(publisher)
    finally:
        close_quietly(connection)

    assert unsent_rows(hub.store) == [(stray, documents[1], "deliver.nowhere@00")]
    messages = drain(hub.settings.amqp_url, hub.topology.accepted_queue)
    assert_each_document_queued_with_its_own_id(messages, documents, {})


def test_an_unroutable_row_does_not_hold_up_the_rows_written_after_it(hub):
    [first] = accept_documents(hub.store, 1)
    stray = add_outbox_row(hub.store, first, "deliver.nowhere@00")
    hub.start_relay()
    hub.wait_for(lambda: len(unsent_rows(hub.store)) == 1, what="the routable row to be sent")
    accept_documents(hub.store, 3)
    hub.wait_for(lambda: len(unsent_rows(hub.store)) == 1, what="the later rows to be sent")

    assert unsent_rows(hub.store) == [(stray, first, "deliver.nowhere@00")]
    assert queue_depth(hub.settings.amqp_url, hub.topology.accepted_queue) == 4


def test_a_row_stored_while_the_relay_idles_is_published_and_its_audit_rows_chained(hub):
    hub.start_relay()
    warm_up = accept_documents(hub.store, 1)
    hub.wait_for(lambda: not unsent_rows(hub.store), what="the relay to be running")
    time.sleep(5 * hub.settings.relay_idle_s)  # the relay has looked and found nothing
    documents = accept_documents(hub.store, 3)
    hub.wait_for(lambda: not unsent_rows(hub.store), what="the rows to be sent")
    hub.wait_for(lambda: AuditChain(hub.store).verify().pending == 0, what="the chain")

    report = AuditChain(hub.store).verify()
    assert report.intact
    assert report.rows_checked == 4
    messages = drain(hub.settings.amqp_url, hub.topology.accepted_queue)
    assert_each_document_queued_with_its_own_id(messages, warm_up + documents, {})


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    # The relay processes read settings from the environment; a developer's own HUB_*
    # variables must not leak into them.
    for name in [key for key in os.environ if key.startswith("HUB_")]:
        monkeypatch.delenv(name)
