"""One down, one slow and one flooded endpoint on the shared delivery queues hold back no other.

The three faults run at once against the real broker and database: the down office's
circuit opens and its deliveries wait without using attempts; the slow office (5 s an
answer) never has more deliveries in flight than its bound; a burst to a third office
moves to the bulk lane, so the documents of the healthy offices, filed after the burst,
are delivered before the burst is. At the end everything that could go went, once each.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from legacy_support import document, submit
from sqlalchemy import func, select

from hub.adapters import DeliveryReceipt, OutboundAdapter, outbound_adapter
from hub.envelope import Envelope
from hub.errors import TransientDeliveryError
from hub.region import load_region
from hub.settings import Settings
from hub.store.models import AttemptRow, DeliveryRow

PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
DOWN, SLOW, FLOODED = "146301_1", "146201_1", "146401_1"  # Radom, Płock, Siedlce
HEALTHY = ["146501_1", "146101_1", "142102_1"]  # Warszawa, Ostrołęka, Pruszków
OFFICES = {
    "146501_1": "Urząd m.st. Warszawy",
    "146301_1": "Urząd Miejski w Radomiu",
    "146201_1": "Urząd Miasta Płocka",
    "146401_1": "Urząd Miasta Siedlce",
    "146101_1": "Urząd Miasta Ostrołęki",
    "142102_1": "Urząd Miasta Pruszkowa",
}
BURST = 300
SLOW_DOCUMENTS = 6
SLOW_ANSWER_S = 5.0
DOWN_DOCUMENTS = 20
THRESHOLD = 3


@pytest.fixture
def region_path(tmp_path: Path, eod) -> Path:
    lines = ['[region]\nname = "isolation"\n']
    for office, name in OFFICES.items():
        lines.append(f'[[offices]]\nid = "{office}"\nname = "{name}"\n')
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\ntimeout_s = 10.0\n'
    )
    lines.append(
        f'[[routes]]\nname = "pismo-to-eod"\ndocument_type = "{PISMO}"\n'
        'target_system = "eod"\nsteps = ["check_well_formed"]\n'
    )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Down:
    """An endpoint whose system refuses every connection."""

    def __init__(self) -> None:
        self.calls = 0

    def setup(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        self.calls += 1
        raise TransientDeliveryError("connection refused")


class Slow:
    """The real EOD behind a system that takes 5 s to answer; counts calls in flight."""

    def __init__(self, real: OutboundAdapter) -> None:
        self.real = real
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def setup(self) -> None:
        self.real.setup()

    def stop(self) -> None:
        self.real.stop()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(SLOW_ANSWER_S)
            return self.real.deliver(envelope)
        finally:
            with self._lock:
                self.in_flight -= 1


def isolating(settings: Settings) -> Settings:
    return settings.replace(
        worker_threads=8,
        endpoint_concurrency=2,
        burst_deliveries=50,
        breaker_failure_threshold=THRESHOLD,
        breaker_cool_down_s=300.0,  # the down office stays down for the whole test
        max_attempts=10,
        delivery_timeout_s=10.0,
    )


def test_a_down_a_slow_and_a_flooded_endpoint_hold_back_no_other(hub, eod):
    settings = isolating(hub.settings)
    region = load_region(settings.region_path)
    down = Down()
    slow = Slow(outbound_adapter(region.endpoints[f"eod@{SLOW}"], settings))
    slow.setup()
    hub.start_relay(settings)
    hub.start_worker(settings, adapters={f"eod@{DOWN}": down, f"eod@{SLOW}": slow})

    flooded_shard = settings.topology.shard_of(f"eod@{FLOODED}")
    assert any(settings.topology.shard_of(f"eod@{office}") == flooded_shard for office in HEALTHY)

    down_ids = [submit(hub, letter(DOWN)) for _ in range(DOWN_DOCUMENTS)]
    slow_ids = [submit(hub, letter(SLOW)) for _ in range(SLOW_DOCUMENTS)]
    burst_ids = [submit(hub, letter(FLOODED)) for _ in range(BURST)]
    # Filed after the burst: on one shared FIFO queue they would wait behind all of it.
    healthy_ids = [submit(hub, letter(office)) for office in HEALTHY * 10]

    hub.wait_for(
        lambda: (
            delivered(hub, healthy_ids + burst_ids + slow_ids)
            == len(healthy_ids + burst_ids + slow_ids)
        ),
        timeout_s=120,
        what="every document of the reachable offices delivered",
    )

    finished = delivered_at(hub)
    assert max(finished[m] for m in healthy_ids) < max(finished[m] for m in burst_ids)
    assert max(finished[m] for m in healthy_ids) < max(finished[m] for m in slow_ids)
    # The slow office never took more of the worker than its bound, and paid one attempt
    # per document: waiting for a slot is not an attempt.
    assert slow.most_in_flight <= settings.endpoint_concurrency
    assert attempts_of(hub, slow_ids) == SLOW_DOCUMENTS
    # The down office's circuit opened after THRESHOLD failures: its other documents wait
    # without attempts, none is given up. Those already past the circuit when it opened
    # (in flight, or waiting for a slot: twice the endpoint's bound) and one probe still
    # try; the rest never do.
    assert down.calls <= THRESHOLD + 2 * settings.endpoint_concurrency + 1
    assert down.calls < DOWN_DOCUMENTS
    assert delivered(hub, down_ids) == 0
    assert statuses(hub, down_ids) <= {"pending", "delivering", "retrying"}  # none dead
    # Each document the EOD got, it got once.
    arrivals = eod.admin("GET", "/_sim/received")
    for message_id in healthy_ids + burst_ids + slow_ids:
        assert arrivals[message_id]["count"] == 1


def letter(office: str) -> Envelope:
    return document(office, PISMO, b"<wnio:Dokument xmlns:wnio='urn:x'/>")


def delivered(hub, message_ids: list[str]) -> int:
    with hub.store.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(DeliveryRow)
                .where(DeliveryRow.message_id.in_(message_ids), DeliveryRow.status == "delivered")
            )
            or 0
        )


def delivered_at(hub) -> dict[str, object]:
    with hub.store.session() as session:
        return {
            row.message_id: row.delivered_at
            for row in session.scalars(select(DeliveryRow).where(DeliveryRow.status == "delivered"))
        }


def attempts_of(hub, message_ids: list[str]) -> int:
    with hub.store.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AttemptRow)
                .join(DeliveryRow, DeliveryRow.id == AttemptRow.delivery_id)
                .where(DeliveryRow.message_id.in_(message_ids))
            )
            or 0
        )


def statuses(hub, message_ids: list[str]) -> set[str]:
    with hub.store.session() as session:
        return set(
            session.scalars(
                select(DeliveryRow.status).where(DeliveryRow.message_id.in_(message_ids))
            )
        )
