"""An old system behind folders: files written once and atomically, answers filed once."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from legacy_support import delivery_of, document, every_message_retried, submit, write_region
from support import OFFICES

from adapters.filedrop.folders import SystemFolders
from adapters.filedrop.outbound import ACK_KIND, ERROR_KIND, FileDropOutbound
from hub.errors import TransientDeliveryError
from hub.inbound import accept_into
from hub.poller import Poller
from hub.region import load_region
from hub.store.models import ReceiptRow
from simulators.filedrop.system import PROCESSED, Exchange, FileDropSimulator

INVOICE = "urn:hub:legacy:faktura-ksiegowa:1"
LAND_RECORD = "urn:hub:legacy:ewidencja:1"
BODY = (
    b'<f:Faktura xmlns:f="urn:hub:legacy:faktura-ksiegowa:1"><f:Kwota>100.00</f:Kwota></f:Faktura>'
)
WARSAW, COUNTY = OFFICES[0][0], OFFICES[1][0]


@pytest.fixture
def region_path(tmp_path):
    root = tmp_path / "wymiana"
    return write_region(
        tmp_path / "region.toml",
        systems=[
            {
                "name": "ksiegowosc",
                "kind": "file-drop",
                "url": f"file://{root}/ksiegowosc/{{office}}",
            },
            {
                "name": "ewidencja",
                "kind": "file-drop",
                "url": f"file://{root}/ewidencja/{{office}}",
                "offices": [COUNTY],
                "options": {"format": "fixed-width"},
            },
        ],
        routes=[
            {"name": "invoices", "document_type": INVOICE, "target_system": "ksiegowosc"},
            {"name": "land", "document_type": LAND_RECORD, "target_system": "ewidencja"},
        ],
        inbound=[
            {
                "name": "file-answers",
                "kind": "file-drop-answers",
                "url": f"file://{root}",
                "systems": ["ksiegowosc", "ewidencja"],
            }
        ],
    )


@pytest.fixture
def old_system(region_path):
    exchanges = [
        Exchange(
            folders.inbox,
            folders.outbox,
            str(endpoint.options.get("format", "csv")),
            endpoint.system[:3].upper(),
        )
        for endpoint in load_region(region_path).endpoints.values()
        for folders in [SystemFolders.of(endpoint)]
    ]
    simulator = FileDropSimulator(exchanges)
    simulator.start()
    yield simulator
    simulator.stop()


class LosesFirstAnswer:
    """The adapter, except that after its first write the worker is told it failed."""

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
            raise TransientDeliveryError("the write's outcome was lost on the way")
        return receipt


def receipts(hub, message_id=None):
    with hub.store.session() as session:
        query = session.query(ReceiptRow)
        if message_id is not None:
            query = query.filter(ReceiptRow.message_id == message_id)
        return list(query.order_by(ReceiptRow.id))


def poll_until(hub, condition, what):
    poller = Poller(hub.store, hub.region, hub.settings, f"poller-{uuid.uuid4()}")
    accept = accept_into(hub.store)
    try:
        hub.wait_for(lambda: poller.poll_round(accept) >= 0 and condition(), what=what)
    finally:
        for channel in poller._channels:
            channel.stop()


def late(hub):
    after_deadline = datetime.now(UTC) + timedelta(seconds=hub.settings.receipt_deadline_s + 60)
    return {item.message_id for item in hub.store.late_receipts(after_deadline)}


def folders(hub, endpoint):
    return SystemFolders.of(hub.region.endpoints[endpoint])


def test_each_document_is_written_once_and_its_acknowledgement_filed_once(hub, old_system):
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, document(office, INVOICE, BODY)) for office, _, _ in OFFICES]
    sent.append(submit(hub, document(COUNTY, LAND_RECORD, BODY)))

    messages = hub.wait_until_settled(len(sent))
    assert {row.status for row in messages} == {"delivered"}
    assert delivery_of(hub, sent[0]).external_reference == f"{sent[0]}.csv"
    assert delivery_of(hub, sent[2]).external_reference == f"{sent[2]}.txt"
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")

    received = old_system.state.received()
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())
    for message_id in sent:
        [receipt] = receipts(hub, message_id)
        assert receipt.kind == ACK_KIND
        assert receipt.external_id == f"{message_id}.ack"
        assert receipt.document.decode().strip() == received[message_id]["number"]
    assert late(hub) == set()
    warsaw = folders(hub, f"ksiegowosc@{WARSAW}")
    assert sorted(path.name for path in warsaw.outbox.iterdir()) == ["archiwum"]
    assert (warsaw.archive / f"{sent[0]}.ack").exists()
    assert sorted(path.name for path in warsaw.inbox.iterdir()) == [PROCESSED]


def test_a_retry_after_a_lost_outcome_writes_nothing_twice(hub, old_system):
    endpoint = hub.region.endpoints[f"ksiegowosc@{COUNTY}"]
    losing = LosesFirstAnswer(FileDropOutbound(endpoint, hub.settings))
    hub.start_relay()
    hub.start_worker(adapters={endpoint.name: losing})
    message_id = submit(hub, document(COUNTY, INVOICE, BODY))

    [message] = hub.wait_until_settled(1)
    assert message.status == "delivered"
    assert [a.outcome for a in hub.attempts(message_id)] == ["retry", "delivered"]
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the acknowledgement filed")
    assert old_system.state.stats()["arrivals"] == 1
    assert [r.kind for r in receipts(hub, message_id)] == [ACK_KIND]


def test_a_document_that_arrives_twice_is_registered_once_and_its_answer_filed_once(
    hub, old_system
):
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(WARSAW, INVOICE, BODY))
    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the acknowledgement filed")

    # The same file again, as after a rewrite the system had already read.
    system = folders(hub, f"ksiegowosc@{WARSAW}")
    shutil.copy(
        system.inbox / PROCESSED / f"{message_id}.csv.1", system.inbox / f"{message_id}.csv"
    )
    hub.wait_for(lambda: old_system.state.stats()["answers_written"] == 2, what="answered again")
    archived_again = system.archive / f"{message_id}.ack.1"
    poll_until(hub, archived_again.exists, "archived again")

    stats = old_system.state.stats()
    assert (stats["arrivals"], stats["registered"]) == (2, 1)
    assert len(receipts(hub, message_id)) == 1


def test_while_the_system_does_not_read_files_wait_and_are_answered_later(hub, old_system):
    old_system.set_down(True)
    hub.start_relay()
    hub.start_worker()
    sent = [submit(hub, document(office, INVOICE, BODY)) for office, _, _ in OFFICES * 2]

    messages = hub.wait_until_settled(len(sent))
    assert {row.status for row in messages} == {"delivered"}  # the files are in the inbox
    waiting = [
        path
        for office, _, _ in OFFICES
        for path in folders(hub, f"ksiegowosc@{office}").inbox.glob("*.csv")
    ]
    assert len(waiting) == len(sent)
    assert late(hub) == set(sent)

    old_system.set_down(False)
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")
    assert late(hub) == set()
    assert all(entry["count"] == 1 for entry in old_system.state.received().values())


def test_while_the_share_is_not_mounted_deliveries_retry_then_flow_none_lost(hub, old_system):
    old_system.unmount()
    patient = hub.settings.replace(max_attempts=30, breaker_cool_down_s=1.0)
    hub.start_relay()
    hub.start_worker(settings=patient)
    sent = [submit(hub, document(office, INVOICE, BODY)) for office, _, _ in OFFICES * 2]

    hub.wait_for(lambda: every_message_retried(hub, sent), what="every document to be retried")
    retried = [a for message_id in sent for a in hub.attempts(message_id) if a.outcome == "retry"]
    assert all("inbox folder" in attempt.error_text for attempt in retried)
    old_system.mount()

    messages = hub.wait_until_settled(len(sent), timeout_s=60)
    assert {row.status for row in messages} == {"delivered"}
    poll_until(hub, lambda: len(receipts(hub)) == len(sent), "every acknowledgement filed")
    received = old_system.state.received()
    assert set(received) == set(sent)
    assert all(entry["count"] == 1 for entry in received.values())


def test_an_error_file_is_filed_with_its_reason_and_the_acknowledgement_stays_awaited(
    hub, old_system
):
    old_system.refuse(1, "Nieznany kontrahent")
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, document(WARSAW, INVOICE, BODY))

    hub.wait_until_settled(1)
    poll_until(hub, lambda: len(receipts(hub)) == 1, "the error filed")

    [receipt] = receipts(hub, message_id)
    assert (receipt.kind, receipt.external_id) == (ERROR_KIND, f"{message_id}.err")
    assert receipt.document.decode().strip() == "Nieznany kontrahent"
    assert late(hub) == {message_id}


def test_a_record_the_fixed_width_layout_cannot_hold_is_dead_lettered_with_the_reason(
    hub, old_system
):
    hub.start_relay()
    hub.start_worker()
    too_long = dataclasses.replace(document(COUNTY, LAND_RECORD, BODY), correlation_id="s" * 65)
    message_id = submit(hub, too_long)

    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    assert [a.outcome for a in hub.attempts(message_id)] == ["dead"]
    assert (
        "ID_SPRAWY is 65 characters, its field holds 64" in delivery_of(hub, message_id).last_error
    )
    assert not list(folders(hub, f"ewidencja@{COUNTY}").inbox.glob("*.txt"))


def test_an_answer_about_no_document_of_the_hub_is_set_aside(hub, old_system):
    system = folders(hub, f"ksiegowosc@{WARSAW}")
    stranger = system.outbox / f"{uuid.uuid4()}.ack"
    stranger.write_bytes(b"KS/2024/999999\r\n")
    (system.outbox / "notatka.ack").write_bytes(b"?")

    poll_until(hub, lambda: not list(system.outbox.glob("*.ack")), "both answers moved")

    assert sorted(path.name for path in system.unmatched.iterdir()) == sorted(
        [stranger.name, "notatka.ack"]
    )
    assert receipts(hub) == []
