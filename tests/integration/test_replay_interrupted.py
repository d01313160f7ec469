"""A replay killed half-way leaves each dead delivery replayed once or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from hub.envelope import Address, Envelope
from hub.errors import PermanentDeliveryError
from hub.store.models import AuditRow, DeliveryRow, OutboxRow
from hub.store.repository import PlannedDelivery

DEAD_DELIVERIES = 600
PISMO = b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"><w:T>x</w:T></w:Pismo>'


def park_dead_deliveries(store, count):
    for _ in range(count):
        envelope = Envelope(
            document_type="http://crd.gov.pl/wzor/2013/12/12/1410/",
            source="epuap",
            destination=Address("1421"),
            body=PISMO,
        )
        message_id = str(envelope.envelope_id)
        store.accept(envelope)
        [ticket] = store.record_routing(message_id, [PlannedDelivery("eod@1421", "pismo")])
        claim = store.claim_delivery(ticket.delivery_id, "test", 60.0)
        refusal = PermanentDeliveryError("eod@1421 answered HTTP 400")
        store.fail_delivery(ticket.delivery_id, claim, refusal, give_up=True, next_attempt_at=None)


def replays_on_record(store):
    with store.session() as session:
        return session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.event == "replayed")
        )


def run_replay(settings):
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "hub", "replay", "--endpoint", "eod@1421", "--all"),
            *("--reason", "EOD fixed", "--actor", "operator-anna"),
        ],
        env={**os.environ, "HUB_DATABASE_URL": settings.database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_replay_killed_half_way_replays_each_delivery_once_or_not_at_all(settings, store):
    park_dead_deliveries(store, DEAD_DELIVERIES)

    replay = run_replay(settings)
    while replays_on_record(store) == 0 and replay.poll() is None:
        time.sleep(0.005)
    replay.send_signal(signal.SIGKILL)
    replay.wait()
    replayed_before_the_kill = replays_on_record(store)
    assert 0 < replayed_before_the_kill < DEAD_DELIVERIES

    with store.session() as session:
        deliveries = session.scalars(select(DeliveryRow)).all()
        replayed_messages = [
            row.message_id
            for row in session.scalars(select(AuditRow).where(AuditRow.event == "replayed"))
        ]
        outbox_rows = session.scalar(select(func.count()).select_from(OutboxRow))
    still_dead = [row for row in deliveries if row.status == "dead"]
    assert len(still_dead) == DEAD_DELIVERIES - replayed_before_the_kill
    # Each replay wrote exactly one outbox row besides the first acceptance's.
    assert outbox_rows == DEAD_DELIVERIES + replayed_before_the_kill
    assert len(set(replayed_messages)) == len(replayed_messages) == replayed_before_the_kill

    # Running the replay again takes only what is still dead.
    assert run_replay(settings).wait(timeout=120) == 0
    assert replays_on_record(store) == DEAD_DELIVERIES
    with store.session() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "dead")
            )
            == 0
        )
