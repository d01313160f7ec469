"""The hub's e-Doręczenia webhook: the simulator's notifier really posts to the hub's app.

Both run on loopback in this process: the simulator (checking every request and answer
against the UA API contract) and the hub's Flask app from ``create_app`` with the
webhook registered, against the real store (SQLite and PostgreSQL). A ``NewEvidence``
notification names only the evidence, so the hub resolves it with the contract's
``GET /{eDeliveryAddress}/messages/evidences/{evidenceId}``. The simulator signs its
evidences with the ``edoreczenia`` identity ``hub keys init`` makes, whose certificate
the hub pins in ``trust/platforms/edoreczenia.pem``.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from adapters.edoreczenia.client import EDoreczeniaClient
from adapters.edoreczenia.inbound import EDoreczeniaPollingInbound
from adapters.edoreczenia.outbound import RECIPIENTS_HEADER, EDoreczeniaOutbound
from adapters.edoreczenia.webhook import (
    EXTENSION_KEY,
    WEBHOOK_CLIENT,
    callback_url,
    edoreczenia_subscribe,
    webhook_channel,
)
from hub.envelope import Address, Envelope
from hub.identity import ClientRegistry
from hub.inbound import accept_into
from hub.region import EndpointConfig, InboundConfig, Region, load_region
from hub.settings import Settings
from hub.signing.keystore import Keystore, init_test_pki
from hub.store.models import CaseEventRow, MessageRow, ReceiptRow
from hub.store.quarantine import quarantined
from hub.store.repository import AwaitedReceipt, PlannedDelivery, Store
from hub.web import create_app
from simulators.edoreczenia.mailboxes import SimulatorState
from simulators.edoreczenia.server import create_app as create_simulator_app
from simulators.edoreczenia.signing import EvidenceSigner
from simulators.serving import loopback_server

CLIENT_ID, CLIENT_SECRET = "hub-mazowsze", "sekret"
WEBHOOK_SECRET = "webhook-sekret-mazowsze"
OFFICE_ID = "146501_1"
OFFICE = "AE:PL-14650-10000-AAAAA-01"
CITIZEN = "AE:PL-51234-56789-BCDEF-11"
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
PISMO = f'<?xml version="1.0"?><Pismo xmlns="{PISMO_OGOLNE}"><T>wniosek</T></Pismo>'.encode()
DECYZJA = b'<?xml version="1.0"?><Decyzja xmlns="urn:test:decyzja"><Tresc>Tak</Tresc></Decyzja>'


@dataclass
class Served:
    """An app served on a loopback port in a thread."""

    url: str
    stop: Callable[[], None]


def serve(app: Flask) -> Served:
    server = loopback_server(app)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(5)

    return Served(f"http://127.0.0.1:{server.port}", stop)


@dataclass
class Simulator:
    url: str
    state: SimulatorState

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}/_sim/{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def inject(self, to: str, content: bytes) -> str:
        attachment = {
            "filename": "wniosek.xml",
            "contentType": "application/xml",
            "content": base64.b64encode(content).decode("ascii"),
        }
        answer = self.admin(
            "POST",
            "messages",
            json={"to": to, "from": CITIZEN, "subject": "Wniosek", "attachments": [attachment]},
        )
        return str(answer["messageId"])

    def client(self) -> EDoreczeniaClient:
        return EDoreczeniaClient(
            f"{self.url}/api/v1",
            f"{self.url}/oauth2/token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            timeout_s=5.0,
        )

    def notifications_answered(self) -> int:
        stats = self.admin("GET", "stats")
        return int(stats.get("notifications_delivered", 0) + stats.get("notifications_failed", 0))


@pytest.fixture
def pki(settings: Settings) -> Settings:
    """``hub keys init``'s layout: the provider's key in platforms/, its certificate pinned."""
    init_test_pki(
        settings.keys,
        settings.trust,
        ["edoreczenia"],
        platforms_dir=settings.var_dir / "platforms",
    )
    return settings


@pytest.fixture
def simulator(pki: Settings) -> Iterator[Simulator]:
    identity = Keystore(pki.var_dir / "platforms").identity("edoreczenia")
    state = SimulatorState(
        clients={CLIENT_ID: CLIENT_SECRET}, evidence_signer=EvidenceSigner(identity)
    )
    app = create_simulator_app(state, validate_responses=True, notify_timeout_s=10.0)
    served = serve(app)
    yield Simulator(served.url, state)
    served.stop()
    assert state.request_violations == [], "the hub sent requests the contract forbids"
    assert state.response_violations == [], "the simulator answered outside the contract"


@pytest.fixture
def webhook_settings(settings: Settings, tmp_path: Path, simulator: Simulator) -> Settings:
    region = tmp_path / "edoreczenia-region.toml"
    region.write_text(
        f"""
[region]
name = "mazowsze"

[[offices]]
id = "{OFFICE_ID}"
name = "Urząd m.st. Warszawy"
edoreczenia = "{OFFICE}"

[[offices]]
id = "1432"
name = "Starostwo bez skrzynki"

[[inbound]]
name = "edoreczenia"
kind = "edoreczenia-poll"
url = "{simulator.url}/api/v1"
token_url = "{simulator.url}/oauth2/token"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
webhook = true
timeout_s = 5.0
""",
        encoding="utf-8",
    )
    return settings.replace(region_path=region)


@pytest.fixture
def hub_url(webhook_settings: Settings, store: Store) -> Iterator[str]:
    # The platform's client; subscribing gives it a new token, this one still valid a day.
    ClientRegistry(store).add(
        WEBHOOK_CLIENT, "region", apis=["edoreczenia-webhook"], token=WEBHOOK_SECRET
    )
    app = create_app(webhook_settings, store)
    assert EXTENSION_KEY in app.extensions, "the hub.web entry point registers the webhook"
    served = serve(app)
    yield served.url
    served.stop()


@pytest.fixture
def subscribed(hub_url: str, webhook_settings: Settings) -> str:
    result = CliRunner().invoke(
        edoreczenia_subscribe, ["--callback-base-url", hub_url], obj=webhook_settings
    )
    assert result.exit_code == 0, result.output
    assert "1 e-Doręczenia mailbox(es) subscribed" in result.output
    return hub_url


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def messages(store: Store) -> list[MessageRow]:
    with store.session() as session:
        return list(session.scalars(select(MessageRow)))


def receipts(store: Store) -> list[ReceiptRow]:
    with store.session() as session:
        return list(session.scalars(select(ReceiptRow).order_by(ReceiptRow.id)))


def channel_of(settings: Settings) -> tuple[InboundConfig, Region]:
    region = load_region(settings.region_path)
    channel = webhook_channel(region)
    assert channel is not None
    return channel, region


def post_statement(hub_url: str, office_id: str, body: dict[str, Any], secret: str) -> Any:
    url = callback_url(hub_url, office_id, secret)
    return requests.post(url, json=body, timeout=10)


def send_through_the_store(store: Store, settings: Settings) -> tuple[str, str]:
    """Send a decision as a delivery worker would; the hub's and the service's message ids."""
    envelope = Envelope(
        document_type="urn:test:decyzja",
        source="eod",
        destination=Address(OFFICE_ID),
        body=DECYZJA,
        headers={RECIPIENTS_HEADER: CITIZEN},
    )
    channel, _ = channel_of(settings)
    endpoint = EndpointConfig(
        name=f"edoreczenia@{OFFICE_ID}",
        kind="edoreczenia-rest",
        office=OFFICE_ID,
        system="edoreczenia",
        url=channel.url,
        timeout_s=5.0,
        options={**channel.options, "sender_address": OFFICE},
    )
    store.accept(envelope)
    message_id = str(envelope.envelope_id)
    tickets = store.record_routing(message_id, [PlannedDelivery(endpoint.name, "decyzje")])
    assert tickets is not None
    (ticket,) = tickets
    claim = store.claim_delivery(ticket.delivery_id, "test-worker", 30.0)
    outbound = EDoreczeniaOutbound(endpoint, settings)
    outbound.setup()
    try:
        receipt = outbound.deliver(envelope)
    finally:
        outbound.stop()
    # As a worker records it, with a receipt deadline already past: late until E.1 is kept.
    assert receipt.awaits is not None
    store.complete_delivery(
        ticket.delivery_id,
        claim,
        receipt.external_reference,
        evidence=receipt.evidence,
        awaited=AwaitedReceipt(receipt.awaits, datetime.now(UTC)),
    )
    return message_id, receipt.external_reference


def open_as_addressee(simulator: Simulator) -> None:
    """The addressee opens the letter in full format, which issues E.1 (dowód otrzymania)."""
    citizen = simulator.client()
    try:
        (copy,) = citizen.list_messages(CITIZEN)
        citizen.get_message(CITIZEN, copy.message_id)
    finally:
        citizen.close()


def issued_evidence_id(simulator: Simulator, kind: str) -> str:
    # Read from the simulator's state, not downloaded: a download would take the fault.
    with simulator.state.lock:
        (evidence_id,) = [
            item.evidence_id for item in simulator.state.evidences.values() if item.kind == kind
        ]
    return evidence_id


def case_events(store: Store) -> list[str]:
    with store.session() as session:
        return [row.event for row in session.scalars(select(CaseEventRow))]


def test_a_new_message_arrives_through_the_webhook_and_is_stored_once_even_when_polled(
    simulator: Simulator, subscribed: str, webhook_settings: Settings, store: Store
) -> None:
    platform_id = simulator.inject(OFFICE, PISMO)
    external_id = f"edoreczenia:{OFFICE}:{platform_id}"

    wait_for(lambda: store.message_id_by_external_id(external_id), "the webhook to store it")
    wait_for(
        lambda: "HUB_PRZYJETE" in simulator.admin("GET", f"mailboxes/{OFFICE}")[0]["labels"],
        "the webhook to label it taken",
    )
    # A poller that does not recognise the label reads the message again: a duplicate.
    channel, region = channel_of(webhook_settings)
    other_label = {**channel.options, "processed_label": "INNY_ODBIORCA"}
    poller = EDoreczeniaPollingInbound(
        dataclasses.replace(channel, options=other_label), region, webhook_settings
    )
    poller.setup()
    try:
        assert poller.poll_once(accept_into(store)) == 1
    finally:
        poller.stop()

    (stored,) = messages(store)
    assert stored.external_id == external_id
    assert stored.source == "edoreczenia"
    assert stored.document_type == PISMO_OGOLNE
    wait_for(lambda: simulator.notifications_answered() == 1, "the callback to be answered")
    assert simulator.admin("GET", "stats").get("notifications_failed", 0) == 0


def test_evidences_of_a_sent_message_arrive_through_the_webhook_as_receipts_once(
    simulator: Simulator, subscribed: str, webhook_settings: Settings, store: Store
) -> None:
    message_id, platform_id = send_through_the_store(store, webhook_settings)
    open_as_addressee(simulator)
    citizen = simulator.client()
    try:
        issued = citizen.evidences(OFFICE, platform_id)
    finally:
        citizen.close()
    # A.1 and D.1 at sending, E.1 at opening: each posted to the hub.
    wait_for(lambda: simulator.notifications_answered() == 3, "three evidence callbacks")
    replayed = {
        "eDeliveryAddress": OFFICE,
        "notificationType": "NewEvidence",
        "notification": [{"id": issued[-1].evidence_id, "type": "E.1"}],
    }
    assert post_statement(subscribed, OFFICE_ID, replayed, WEBHOOK_SECRET).status_code == 202

    kept = receipts(store)
    assert {receipt.message_id for receipt in kept} == {message_id}
    assert sorted(receipt.kind for receipt in kept) == [
        "e-Doręczenia A.1",
        "e-Doręczenia D.1",
        "e-Doręczenia E.1",
    ]
    assert sorted(str(receipt.external_id) for receipt in kept) == sorted(
        item.evidence_id for item in issued
    )
    assert all(receipt.signature_valid is True for receipt in kept)
    assert "receipt e-Doręczenia E.1" in case_events(store)
    assert store.late_receipts() == [], "the verified E.1 ends the wait for it"
    assert quarantined(store, channel="receipts") == []
    assert simulator.admin("GET", "stats").get("notifications_failed", 0) == 0


def test_an_evidence_forged_on_its_way_is_quarantined_and_the_delivery_stays_late(
    simulator: Simulator, subscribed: str, webhook_settings: Settings, store: Store
) -> None:
    message_id, _ = send_through_the_store(store, webhook_settings)
    events_before = case_events(store)
    simulator.admin("POST", "faults", json={"kind": "forged_evidence", "evidence_type": "E.1"})

    open_as_addressee(simulator)
    forged_id = issued_evidence_id(simulator, "E.1")
    wait_for(lambda: simulator.notifications_answered() == 3, "three evidence callbacks")
    wait_for(lambda: quarantined(store, channel="receipts"), "the forged E.1 to be quarantined")

    (refused,) = quarantined(store, channel="receipts")
    assert refused.code == "receipt-signature-invalid"
    assert forged_id in refused.reason
    assert "the signature does not verify" in refused.reason
    kept = receipts(store)
    assert sorted(receipt.kind for receipt in kept) == ["e-Doręczenia A.1", "e-Doręczenia D.1"]
    assert forged_id not in {receipt.external_id for receipt in kept}
    assert case_events(store) == events_before
    assert [late.message_id for late in store.late_receipts()] == [message_id]
    assert simulator.admin("GET", "stats")["fault_forged_evidence"] == 1

    # The provider's own E.1, read again (the fault was used up), is filed and ends the wait.
    replayed = {
        "eDeliveryAddress": OFFICE,
        "notificationType": "NewEvidence",
        "notification": [{"id": forged_id, "type": "E.1"}],
    }
    assert post_statement(subscribed, OFFICE_ID, replayed, WEBHOOK_SECRET).status_code == 202
    assert "e-Doręczenia E.1" in {receipt.kind for receipt in receipts(store)}
    assert "receipt e-Doręczenia E.1" in case_events(store)
    assert store.late_receipts() == []


def test_evidence_of_a_message_the_hub_did_not_send_is_acknowledged_and_not_kept(
    simulator: Simulator, subscribed: str, store: Store
) -> None:
    office = simulator.client()
    try:
        office.send_message(
            OFFICE,
            [CITIZEN],
            subject="Pismo spoza huba",
            body_bytes=DECYZJA,
            filename="pismo.xml",
            content_type="application/xml",
        )
    finally:
        office.close()

    wait_for(lambda: simulator.notifications_answered() == 2, "the A.1 and D.1 callbacks")
    assert simulator.admin("GET", "stats").get("notifications_failed", 0) == 0
    assert receipts(store) == []


def test_a_callback_with_a_wrong_secret_is_refused_and_stores_nothing(
    simulator: Simulator, hub_url: str, store: Store
) -> None:
    platform_id = simulator.inject(OFFICE, PISMO)  # nobody subscribed: no real callback
    statement = {
        "eDeliveryAddress": OFFICE,
        "notificationType": "NewMessage",
        "notification": [{"id": platform_id, "threadId": str(uuid.uuid4())}],
    }

    wrong = post_statement(hub_url, OFFICE_ID, statement, "zgadywane")
    missing = requests.post(
        f"{hub_url}/edoreczenia/notifications/{OFFICE_ID}", json=statement, timeout=10
    )

    for answer in (wrong, missing):
        assert answer.status_code == 401
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["type"] == "urn:hub:problem:unauthorized"
    assert messages(store) == []
    (untouched,) = simulator.admin("GET", f"mailboxes/{OFFICE}")
    assert untouched["labels"] == ["INBOX"]
    assert untouched["opened"] is False


def test_callbacks_for_unknown_offices_or_other_mailboxes_are_refused_with_problems(
    simulator: Simulator, hub_url: str, store: Store
) -> None:
    statement = {"eDeliveryAddress": OFFICE, "notificationType": "NewMessage"}

    unknown = post_statement(hub_url, "999999_9", statement, WEBHOOK_SECRET)
    no_mailbox = post_statement(hub_url, "1432", statement, WEBHOOK_SECRET)
    other_mailbox = post_statement(
        hub_url, OFFICE_ID, {**statement, "eDeliveryAddress": CITIZEN}, WEBHOOK_SECRET
    )
    not_json = requests.post(
        callback_url(hub_url, OFFICE_ID, WEBHOOK_SECRET), data=b"<xml/>", timeout=10
    )

    assert [unknown.status_code, no_mailbox.status_code] == [404, 404]
    assert unknown.json()["type"] == "urn:hub:problem:unknown-office"
    assert [other_mailbox.status_code, not_json.status_code] == [400, 400]
    assert other_mailbox.json()["type"] == "urn:hub:problem:malformed-notification"
    assert messages(store) == []


def test_a_message_the_service_cannot_hand_over_is_answered_503_and_left_for_polling(
    simulator: Simulator, hub_url: str, store: Store
) -> None:
    platform_id = simulator.inject(OFFICE, PISMO)
    simulator.admin("POST", "faults", json={"kind": "http500", "path_contains": platform_id})
    statement = {
        "eDeliveryAddress": OFFICE,
        "notificationType": "NewMessage",
        "notification": [{"id": platform_id}],
    }

    answer = post_statement(hub_url, OFFICE_ID, statement, WEBHOOK_SECRET)

    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:hub:problem:not-handled-now"
    assert messages(store) == []
    assert post_statement(hub_url, OFFICE_ID, statement, WEBHOOK_SECRET).status_code == 202
    assert len(messages(store)) == 1
