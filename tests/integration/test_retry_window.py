"""A delivery is retried until its maximum age, then dead-lettered; a replay opens a new window."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture
def settings(settings):
    # Tiers of 1 s and 2 s: the second failure's next try would come 3 s after the first
    # attempt, past the 2.5 s window.
    return dataclasses.replace(settings, max_age_s=2.5, max_attempts=100)


def test_a_delivery_failing_past_its_maximum_age_is_dead_lettered(hub, eod, enqueue_filings):
    eod.admin("POST", "/_sim/faults", json={"kind": "http503", "times": None})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()

    messages = hub.wait_until_settled(2, timeout_s=60)  # one filing per office
    assert {message.status for message in messages} == {"dead"}
    for message in messages:
        assert [a.outcome for a in hub.attempts(message.id)] == ["retry", "dead"]
    parked = hub.store.dead_deliveries()
    assert len(parked) == 2
    assert all("HTTP 503" in (dead.last_error or "") for dead in parked)


def test_a_replay_gets_a_fresh_retry_window(hub, eod, enqueue_filings):
    eod.admin("POST", "/_sim/faults", json={"kind": "http503", "times": None})
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(1)
    hub.poll()
    hub.wait_until_settled(2, timeout_s=60)
    parked, _other = hub.store.dead_deliveries()
    message_id = parked.message_id

    eod.admin("DELETE", "/_sim/faults")
    eod.admin("POST", "/_sim/faults", json={"kind": "http503", "times": 1})
    assert hub.store.replay_delivery(parked.delivery_id, "operator", "EOD back") == message_id
    hub.wait_for(
        lambda: hub.store.message_status(message_id).value == "delivered", what="the replay"
    )
    assert [a.outcome for a in hub.attempts(message_id)] == ["retry", "dead", "retry", "delivered"]
    assert eod.admin("GET", "/_sim/received")[message_id]["count"] == 1
