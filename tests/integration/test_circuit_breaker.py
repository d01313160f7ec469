"""A failing or paused endpoint is left alone: deliveries wait without burning attempts."""

from __future__ import annotations

import json
import time

from hub.breaker import Circuit, CircuitBreakers
from hub.store.models import AuditRow


def attempts_of(hub, messages):
    return {row.id: len(hub.attempts(row.id)) for row in messages}


def test_a_paused_endpoint_gets_no_attempts_until_it_is_resumed(hub, eod, enqueue_filings):
    breakers = CircuitBreakers(hub.store, hub.settings)
    breakers.pause("eod@146501_1", "operator-anna", "EOD upgrade 22:00-23:00")
    hub.start_relay()
    hub.start_worker()
    enqueue_filings(3)
    hub.poll()

    hub.wait_for(
        lambda: sum(row.status == "delivered" for row in hub.messages()) == 3,
        what="the other office's filings",
    )
    time.sleep(1.5)  # time for the paused office's deliveries to be held, not attempted
    waiting = [row for row in hub.messages() if row.destination == "146501_1"]
    assert {row.status for row in waiting} == {"routed"}
    assert set(attempts_of(hub, waiting).values()) == {0}

    breakers.resume("eod@146501_1", "operator-anna")
    messages = hub.wait_until_settled(6, timeout_s=90)
    assert {row.status for row in messages} == {"delivered"}
    assert set(attempts_of(hub, messages).values()) == {1}
    with hub.store.session() as session:
        actions = [
            (row.event, json.loads(row.details))
            for row in session.query(AuditRow).filter(AuditRow.message_id.is_(None))
        ]
    assert [(event, d["actor"], d["endpoint"]) for event, d in actions] == [
        ("endpoint-paused", "operator-anna", "eod@146501_1"),
        ("endpoint-resumed", "operator-anna", "eod@146501_1"),
    ]


def test_repeated_failures_open_the_circuit_and_a_probe_closes_it_again(hub, eod, enqueue_filings):
    eod.admin("POST", "/_sim/faults", json={"kind": "down"})
    settings = hub.settings.replace(breaker_failure_threshold=2, breaker_cool_down_s=1.0)
    hub.start_relay()
    hub.start_worker(settings)
    enqueue_filings(4)
    hub.poll()

    breakers = CircuitBreakers(hub.store, settings)
    hub.wait_for(
        lambda: any(row.state == Circuit.OPEN for row in breakers.states()),
        what="a circuit to open",
    )
    time.sleep(3)  # an outage longer than a few retry tiers
    during = attempts_of(hub, hub.messages())
    assert sum(during.values()) < 2 * len(during)  # most deliveries waited without trying

    eod.admin("DELETE", "/_sim/faults")
    messages = hub.wait_until_settled(8, timeout_s=120)
    assert {row.status for row in messages} == {"delivered"}
    assert {row.state for row in breakers.states()} == {Circuit.CLOSED}
    assert all(entry["count"] == 1 for entry in eod.admin("GET", "/_sim/received").values())
