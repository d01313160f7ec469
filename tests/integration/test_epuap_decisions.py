"""An office's decision goes out through ePUAP with UPD, and the UPD comes back to its case.

The whole way is real: the decision is routed, XAdES-signed with the office's key by a
route step, sent with ``dorecz`` over WS-Security to the ePUAP simulator, which refuses
unsigned calls; the citizen "collects" it, the signed UPD lands in the office's mailbox,
the hub pulls it (again over WS-Security) and files it with the decision it certifies.
"""

from __future__ import annotations

import base64

import pytest
from dashboard_support import bearer, with_accounts
from lxml import etree
from support import OFFICES, Simulator, serve_in_thread

from hub.envelope import Address, Envelope
from hub.signing.keystore import Keystore, init_test_pki
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, verify_document
from hub.store.models import CaseEventRow, DeliveryRow, ReceiptRow
from hub.store.quarantine import quarantined
from hub.web import create_app
from simulators.epuap.server import create_app as create_epuap_app

DECISION_TYPE = "http://example.gov.pl/hub/test/decyzja/"
LETTER_TYPE = "http://example.gov.pl/hub/test/pismo/"
UPO = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
STRUKTURA = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
CITIZEN_MAILBOX = "/jan-kowalski/skrytka"
DECISION = (
    f'<d:Decyzja xmlns:d="{DECISION_TYPE}"><d:Znak>GK.6740.7.2026</d:Znak>'
    "<d:Tresc>Udziela się pozwolenia.</d:Tresc></d:Decyzja>"
).encode()


@pytest.fixture
def keys(tmp_path):
    """The hub's keystore and trust lists, as ``hub keys init`` lays them out."""
    init_test_pki(
        tmp_path / "keys",
        tmp_path / "trust",
        ["epuap", *(office_id for office_id, _, _ in OFFICES)],
        ca_dir=tmp_path / "ca",
        platforms_dir=tmp_path / "platforms",
    )
    return Keystore(tmp_path / "keys")


@pytest.fixture
def platform(tmp_path, keys):
    """ePUAP's identity, held by the simulator only."""
    return Keystore(tmp_path / "platforms").identity("epuap")


@pytest.fixture
def epuap(keys, platform):
    app = create_epuap_app(
        trusted_ca_pems=[keys.ca_certificate_pem()],
        identity=platform,
        upd_delay_s=0.2,
    )
    simulator = serve_in_thread(app)
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path, epuap: Simulator, keys):
    services = f"{epuap.url}/pk_external_ws/services"
    lines = ['[region]\nname = "test region"\n']
    lines += [
        f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n'
        for office_id, name, esp in OFFICES
    ]
    lines.append(
        f'[[systems]]\nname = "epuap"\nkind = "epuap-doreczyciel"\nurl = "{services}/doreczyciel"\n'
    )
    lines.append(
        f'[[systems]]\nname = "skrytka"\nkind = "epuap-skrytka"\nurl = "{services}/skrytka"\n'
        f'options = {{ filerepo_url = "{epuap.url}/repo-ws-ext/FileRepoService", '
        "large_attachment_bytes = 2000 }\n"
    )
    lines.append('[[systems]]\nname = "receipts"\nkind = "epuap-receipts"\nurl = "store:"\n')
    lines.append(
        f'[[routes]]\nname = "letter-to-citizen"\ndocument_type = "{LETTER_TYPE}"\n'
        'sources = ["eod"]\ntarget_system = "skrytka"\n'
    )
    lines.append(
        f'[[routes]]\nname = "decision-to-citizen"\ndocument_type = "{DECISION_TYPE}"\n'
        'sources = ["eod"]\ntarget_system = "epuap"\n'
        'steps = ["check_well_formed", "sign_with_office"]\n'
    )
    lines.append(
        f'[[routes]]\nname = "epuap-receipts"\ndocument_type = "{UPO}"\nsources = ["epuap"]\n'
        'target_system = "receipts"\n'
    )
    lines.append(
        f'[[inbound]]\nname = "epuap"\nkind = "epuap-pull"\nurl = "{services}/pull"\n'
        "ws_security = true\n"
    )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_decision_sent_with_upd_ends_with_a_verified_upd_on_its_message(hub, epuap, keys):
    decision = Envelope(
        document_type=DECISION_TYPE,
        source="eod",
        destination=Address("146501_1"),
        body=DECISION,
        headers={"epuap-recipient": CITIZEN_MAILBOX, "filename": "decyzja.xml"},
    )
    hub.store.accept(decision)
    hub.start_relay()
    hub.start_worker()
    hub.wait_for(lambda: hub.store.message_status(str(decision.envelope_id)).value == "delivered")

    hub.wait_for(lambda: hub.poll() >= 1, what="the UPD to reach the office's mailbox")
    hub.wait_until_settled(2)

    with hub.store.session() as session:
        sent = session.query(DeliveryRow).filter_by(message_id=str(decision.envelope_id)).one()
        [upd] = (
            session.query(ReceiptRow)
            .filter_by(message_id=str(decision.envelope_id), kind="UPD")
            .all()
        )
    assert upd.signature_valid is True
    assert sent.external_reference.encode() in upd.document
    trust = TrustStore.from_pems([keys.ca_certificate_pem()])
    assert "CN=epuap" in verify_document(upd.document, trust).signer


def test_the_citizen_receives_the_decision_signed_by_the_office(hub, epuap, keys):
    decision = Envelope(
        document_type=DECISION_TYPE,
        source="eod",
        destination=Address("1421"),
        body=DECISION,
        headers={"epuap-recipient": CITIZEN_MAILBOX},
    )
    hub.store.accept(decision)
    hub.start_relay()
    hub.start_worker()
    hub.wait_for(lambda: hub.store.message_status(str(decision.envelope_id)).value == "delivered")

    [arrived] = epuap.admin("GET", "/_sim/sent")["sent"]
    assert (arrived["operation"], arrived["address"]) == ("dorecz", CITIZEN_MAILBOX)
    assert "CN=1421" in arrived["document_signer"]  # the XAdES signature on the decision
    assert "CN=1421" in arrived["signer"]  # the WS-Security signature on the call


def test_a_decision_to_a_malformed_mailbox_is_dead_lettered_with_the_reason(hub, epuap):
    decision = Envelope(
        document_type=DECISION_TYPE,
        source="eod",
        destination=Address("1421"),
        body=DECISION,
        headers={"epuap-recipient": "jan-kowalski"},
    )
    hub.store.accept(decision)
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)
    assert message.status == "dead"
    [attempt] = hub.attempts(message.id)
    assert "/podmiot/skrytka" in attempt.error_text


def letter(office="146501_1"):
    return Envelope(
        document_type=LETTER_TYPE,
        source="eod",
        destination=Address(office),
        body=f'<p:Pismo xmlns:p="{LETTER_TYPE}">Zawiadomienie</p:Pismo>'.encode(),
        headers={"epuap-recipient": CITIZEN_MAILBOX},
    )


def test_a_letter_sent_with_nadaj_keeps_the_platforms_verified_upp(hub, epuap):
    sent = letter()
    hub.store.accept(sent)
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    with hub.store.session() as session:
        [upp] = session.query(ReceiptRow).filter_by(message_id=message.id).all()
    assert (upp.kind, upp.signature_valid) == ("UPP", True)
    assert upp.document.startswith(b"<?xml")


def test_an_answer_whose_signature_breaks_on_the_way_is_refused_with_a_clear_reason(hub, epuap):
    epuap.admin(
        "POST", "/_sim/faults", json={"operation": "nadaj", "kind": "bad_signature", "times": 1}
    )
    hub.store.accept(letter())
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "dead"
    [attempt] = hub.attempts(message.id)
    assert "not signed by its certificate" in attempt.error_text
    assert "check before replaying" in attempt.error_text


def test_a_upd_that_has_not_come_by_its_deadline_is_flagged_late_until_it_comes(
    hub, epuap, settings
):
    epuap.admin("POST", "/_sim/upd", json={"hold": True})
    decision = Envelope(
        document_type=DECISION_TYPE,
        source="eod",
        destination=Address("146501_1"),
        body=DECISION,
        headers={"epuap-recipient": CITIZEN_MAILBOX},
    )
    hub.store.accept(decision)
    hub.start_relay()
    hub.start_worker(settings.replace(receipt_deadline_s=0.5))
    hub.wait_for(lambda: hub.store.message_status(str(decision.envelope_id)).value == "delivered")
    hub.wait_for(lambda: bool(hub.store.late_receipts()), what="the UPD deadline to pass")

    [late] = hub.store.late_receipts()
    assert (late.message_id, late.awaited, late.endpoint) == (
        str(decision.envelope_id),
        "UPD",
        "epuap@146501_1",
    )
    api = (
        create_app(with_accounts(settings, hub.store), hub.store)
        .test_client()
        .get("/api/receipts/late", headers=bearer())
        .json
    )
    assert api["count"] == 1

    epuap.admin("POST", "/_sim/upd/release")
    hub.wait_for(lambda: hub.poll() >= 1, what="the released UPD")
    hub.wait_for(lambda: not hub.store.late_receipts(), what="the UPD to be filed")


def test_a_large_attachment_travels_through_filerepo_and_a_reference_takes_its_place(hub, epuap):
    scan = bytes(range(256)) * 40  # 10 KB, over this endpoint's 2 KB limit
    small = b"%PDF-1.4 small"
    body = (
        f'<p:Pismo xmlns:p="{LETTER_TYPE}" xmlns:str="{STRUKTURA}"><str:Zalaczniki>'
        '<str:Zalacznik format="application/pdf" kodowanie="base64" nazwaPliku="skan.pdf">'
        f"<str:DaneZalacznika>{base64.b64encode(scan).decode()}</str:DaneZalacznika></str:Zalacznik>"
        '<str:Zalacznik format="application/pdf" kodowanie="base64" nazwaPliku="maly.pdf">'
        f"<str:DaneZalacznika>{base64.b64encode(small).decode()}</str:DaneZalacznika></str:Zalacznik>"
        "</str:Zalaczniki></p:Pismo>"
    ).encode()
    hub.store.accept(
        Envelope(
            document_type=LETTER_TYPE,
            source="eod",
            destination=Address("146501_1"),
            body=body,
            headers={"epuap-recipient": CITIZEN_MAILBOX},
        )
    )
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)
    assert message.status == "delivered"

    mailboxes = epuap.app.extensions["epuap_simulator"].mailboxes
    arrived = etree.fromstring(mailboxes.head(CITIZEN_MAILBOX).content)
    large, kept = arrived.iter(f"{{{STRUKTURA}}}Zalacznik")
    assert large.get("kodowanie") == "URI"
    reference = large.findtext(f"{{{STRUKTURA}}}DaneZalacznika")
    assert reference.startswith(f"{epuap.url}/repo-ws-ext/FileRepoService?fileId=")
    stored = epuap.app.extensions["epuap_filerepo"].get(reference.split("fileId=")[1])
    assert (stored.content, stored.filename) == (scan, "skan.pdf")
    assert base64.b64decode(kept.findtext(f"{{{STRUKTURA}}}DaneZalacznika")) == small


def forged_upd(platform, document_id: str) -> bytes:
    """A UPD for ``document_id`` signed by ePUAP, its date changed after signing."""
    upd = (
        f'<pos:Dokument xmlns:pos="{UPO}"><pos:UPD>'
        "<pos:IdentyfikatorPoswiadczenia>UPD-sfalszowane</pos:IdentyfikatorPoswiadczenia>"
        "<pos:DataDoreczenia>2026-01-02T10:00:00</pos:DataDoreczenia>"
        f"<pos:IdentyfikatorDokumentu>{document_id}</pos:IdentyfikatorDokumentu>"
        "</pos:UPD></pos:Dokument>"
    ).encode()
    signed = sign_document(upd, platform)
    return signed.replace(b"2026-01-02T10:00:00", b"2025-12-01T10:00:00")


def test_a_forged_upd_is_quarantined_not_filed_and_the_delivery_stays_late(
    hub, epuap, settings, platform
):
    epuap.admin("POST", "/_sim/upd", json={"hold": True})
    decision = Envelope(
        document_type=DECISION_TYPE,
        source="eod",
        destination=Address("146501_1"),
        body=DECISION,
        headers={"epuap-recipient": CITIZEN_MAILBOX},
    )
    decision_id = str(decision.envelope_id)
    hub.store.accept(decision)
    hub.start_relay()
    hub.start_worker(settings.replace(receipt_deadline_s=0.5))
    hub.wait_for(lambda: hub.store.message_status(decision_id).value == "delivered")
    hub.wait_for(lambda: bool(hub.store.late_receipts()), what="the UPD deadline to pass")
    with hub.store.session() as session:
        sent = session.query(DeliveryRow).filter_by(message_id=decision_id).one()

    epuap.admin(
        "POST",
        "/_sim/mailboxes/umwarszawa/skrytka/raw?filename=UPD.xml",
        data=forged_upd(platform, sent.external_reference),
    )
    hub.wait_for(lambda: hub.poll() >= 1, what="the forged UPD to be pulled")
    hub.wait_until_settled(2)

    with hub.store.session() as session:
        assert session.query(ReceiptRow).filter_by(message_id=decision_id).count() == 0
        events = [row.event for row in session.query(CaseEventRow).all()]
    assert not [event for event in events if "receipt" in event]
    [kept] = quarantined(hub.store, channel="receipts")
    assert "UPD-sfalszowane" in kept.reason
    assert "does not verify" in kept.reason
    assert [late.message_id for late in hub.store.late_receipts()] == [decision_id]

    # The genuine UPD, when it comes, is filed and ends the alert.
    epuap.admin("POST", "/_sim/upd/release")
    hub.wait_for(lambda: hub.poll() >= 1, what="the genuine UPD")
    hub.wait_for(lambda: not hub.store.late_receipts(), what="the genuine UPD to be filed")
