"""The store's rules on a real SQLite file: idempotency, leases, and the state machine."""

import pytest
from sqlalchemy import select

from hub.envelope import Address, Envelope
from hub.settings import Settings
from hub.states import IllegalTransition, MessageStatus, predecessors
from hub.store.migrate import upgrade_database
from hub.store.models import AttemptRow
from hub.store.repository import AcceptOutcome, ClaimResult, PlannedDelivery, Store


@pytest.fixture
def store(tmp_path):
    settings = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_database(settings)
    store = Store.from_url(settings.database_url)
    yield store
    store.close()


def envelope():
    return Envelope(document_type="t", source="epuap", destination=Address("14"), body=b"<a/>")


def routed(store, *endpoints):
    accepted = envelope()
    store.accept(accepted)
    plans = [PlannedDelivery(endpoint, "route") for endpoint in endpoints]
    return str(accepted.envelope_id), store.record_routing(str(accepted.envelope_id), plans)


def test_a_document_with_a_known_external_id_is_stored_once(store):
    assert store.accept(envelope(), external_id="epuap:/a/b:1") is AcceptOutcome.ACCEPTED
    assert store.accept(envelope(), external_id="epuap:/a/b:1") is AcceptOutcome.DUPLICATE
    assert store.count_unsent_outbox() == 1


def test_a_rejected_document_is_kept_but_never_queued(store):
    rejected = envelope()
    assert store.reject(rejected, "malformed-document: broken") is AcceptOutcome.REJECTED
    assert store.message_status(str(rejected.envelope_id)) is MessageStatus.REJECTED
    assert store.count_unsent_outbox() == 0


def test_routing_twice_returns_the_same_deliveries(store):
    message_id, first = routed(store, "eod@14")
    again = store.record_routing(message_id, [PlannedDelivery("eod@14", "route")])
    assert again == first
    assert store.message_status(message_id) is MessageStatus.ROUTED


def test_routing_an_unknown_message_returns_none(store):
    assert store.record_routing("no-such-message", [PlannedDelivery("eod@14", "r")]) is None


def test_a_held_lease_keeps_a_second_worker_out_until_it_expires(store):
    _, [ticket] = routed(store, "eod@14")
    first = store.claim_delivery(ticket.delivery_id, "worker-a", lease_s=60)
    second = store.claim_delivery(ticket.delivery_id, "worker-b", lease_s=60)
    assert first.result is ClaimResult.CLAIMED
    assert second.result is ClaimResult.HELD_ELSEWHERE
    assert 59 < second.lease_left_s <= 60


def test_an_expired_lease_is_taken_over_and_the_old_attempt_closed_as_abandoned(store):
    message_id, [ticket] = routed(store, "eod@14")
    store.claim_delivery(ticket.delivery_id, "worker-that-died", lease_s=0)
    takeover = store.claim_delivery(ticket.delivery_id, "worker-b", lease_s=60)
    store.complete_delivery(ticket.delivery_id, takeover, "REF/1")

    assert takeover.attempt_number == 2
    with store.session() as session:
        outcomes = session.scalars(select(AttemptRow.outcome).order_by(AttemptRow.number)).all()
    assert outcomes == ["abandoned", "delivered"]
    assert store.message_status(message_id) is MessageStatus.DELIVERED
    again = store.claim_delivery(ticket.delivery_id, "worker-c", lease_s=60)
    assert again.result is ClaimResult.ALREADY_FINAL


def test_a_message_is_delivered_only_when_every_fanned_out_delivery_is(store):
    message_id, tickets = routed(store, "eod@14", "tax@14")
    for ticket in tickets[:1]:
        store.complete_delivery(
            ticket.delivery_id, store.claim_delivery(ticket.delivery_id, "w", 60), None
        )
    assert store.message_status(message_id) is MessageStatus.DELIVERING
    last = tickets[1]
    claim = store.claim_delivery(last.delivery_id, "w", 60)
    store.fail_delivery(
        last.delivery_id, claim, RuntimeError("refused"), give_up=True, next_attempt_at=None
    )
    assert store.message_status(message_id) is MessageStatus.DEAD


def test_a_delivered_message_cannot_be_rejected_afterwards(store):
    message_id, [ticket] = routed(store, "eod@14")
    store.complete_delivery(
        ticket.delivery_id, store.claim_delivery(ticket.delivery_id, "w", 60), None
    )
    with pytest.raises(IllegalTransition, match="delivered to rejected"):
        store.reject_message(message_id, "too late")
    assert store.message_status(message_id) is MessageStatus.DELIVERED


def test_predecessors_include_the_status_itself():
    assert predecessors(MessageStatus.DELIVERED) == {
        MessageStatus.ROUTED,
        MessageStatus.DELIVERING,
        MessageStatus.RETRYING,
        MessageStatus.DELIVERED,
    }


def test_only_one_holder_has_a_singleton_lease_until_it_releases_it(store):
    assert store.acquire_singleton("relay", "a", 60)
    assert not store.acquire_singleton("relay", "b", 60)
    assert store.acquire_singleton("relay", "a", 60)
    store.release_singleton("relay", "a")
    assert store.acquire_singleton("relay", "b", 60)
