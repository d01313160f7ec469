"""Routes decide what a signature must be: verified and recorded, or required valid."""

from __future__ import annotations

import pytest
from support import OFFICES

from hub.envelope import Address, Envelope
from hub.signing.keystore import Keystore, init_keystore, init_test_pki
from hub.signing.trust import CITIZENS
from hub.signing.xades import sign_document
from hub.store.models import SignatureCheckRow

OPTIONAL = "urn:test:wniosek-podpis-zalecany"
REQUIRED = "urn:test:wniosek-podpis-wymagany"


@pytest.fixture
def keystore(settings):
    """Test keys whose CA is also listed for citizens: these documents stand for theirs."""
    init_test_pki(settings.keys, settings.trust, [office_id for office_id, _, _ in OFFICES])
    listed = settings.trust / CITIZENS / "ca.pem"
    listed.write_bytes(Keystore(settings.keys).ca_certificate_pem())
    return Keystore(settings.keys)


@pytest.fixture
def region_path(tmp_path, eod):
    lines = ['[region]\nname = "test region"\n']
    lines += [f'[[offices]]\nid = "{o}"\nname = "{n}"\nesp = "{e}"\n' for o, n, e in OFFICES]
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\n'
    )
    for name, document_type, step in (
        ("optional", OPTIONAL, "verify_signature"),
        ("required", REQUIRED, "require_valid_signature"),
    ):
        lines.append(
            f'[[routes]]\nname = "{name}"\ndocument_type = "{document_type}"\n'
            f'target_system = "eod"\nsteps = ["check_well_formed", "{step}"]\n'
        )
    path = tmp_path / "region.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def filing(document_type, body, office="1421"):
    return Envelope(
        document_type=document_type, source="epuap", destination=Address(office), body=body
    )


def document(document_type):
    return f'<w:Wniosek xmlns:w="{document_type}"><w:Tresc>Wniosek</w:Tresc></w:Wniosek>'.encode()


def checks(store):
    with store.session() as session:
        return {row.message_id: row for row in session.query(SignatureCheckRow)}


def test_a_valid_signature_is_recorded_with_its_signer_and_time(hub, keystore):
    signed = sign_document(document(OPTIONAL), keystore.identity("146501_1"))
    sent = filing(OPTIONAL, signed)
    hub.store.accept(sent)
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    check = checks(hub.store)[message.id]
    assert (check.valid, check.method) == (True, "xades")
    assert "CN=146501_1" in check.signer
    assert check.signed_at is not None
    assert check.certificate_serial


def test_an_invalid_signature_on_an_optional_route_is_recorded_and_the_document_flows(
    hub, keystore
):
    signed = sign_document(document(OPTIONAL), keystore.identity("146501_1"))
    hub.store.accept(filing(OPTIONAL, signed.replace(b"Wniosek</w:Tresc>", b"Skarga</w:Tresc>")))
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    check = checks(hub.store)[message.id]
    assert check.valid is False
    assert "does not verify" in check.reason


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("unsigned", "carries no ds:Signature"),
        ("stranger", "not issued by a trusted CA"),
        ("tampered", "does not verify"),
    ],
)
def test_a_route_that_requires_a_signature_rejects_each_failure_with_its_reason(
    hub, keystore, tmp_path, make, reason
):
    body = document(REQUIRED)
    if make == "stranger":
        init_keystore(tmp_path / "stranger", ["1421"])
        body = sign_document(body, Keystore(tmp_path / "stranger").identity("1421"))
    elif make == "tampered":
        body = sign_document(body, keystore.identity("1421")).replace(b">Wniosek<", b">Skarga!<")
    hub.store.accept(filing(REQUIRED, body))
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "rejected"
    assert message.status_reason.startswith("signature-invalid: ")
    assert reason in message.status_reason


def test_each_signature_of_a_countersigned_document_is_recorded(hub, keystore):
    once = sign_document(document(OPTIONAL), keystore.identity("146501_1"))
    twice = sign_document(once, keystore.identity("1421"))
    hub.store.accept(filing(OPTIONAL, twice))
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    with hub.store.session() as session:
        rows = session.query(SignatureCheckRow).order_by(SignatureCheckRow.position).all()
        found = [(row.position, row.valid, row.form, row.covers_document) for row in rows]
        signers = [row.signer for row in rows]
    assert found == [(1, False, "enveloped", True), (2, True, "enveloped", True)]
    assert "CN=146501_1" in signers[0]
    assert "CN=1421" in signers[1]


def test_an_office_key_does_not_pass_for_a_citizens_signature_unless_its_ca_is_listed(
    hub, settings, keystore, tmp_path
):
    # The citizens' list holds a qualified CA of its own, not the offices' CA.
    init_keystore(tmp_path / "qualified", [])
    qualified_ca = (tmp_path / "qualified" / "ca.pem").read_bytes()
    (settings.trust / CITIZENS / "ca.pem").write_bytes(qualified_ca)
    body = sign_document(document(REQUIRED), keystore.identity("146501_1"))
    hub.store.accept(filing(REQUIRED, body))
    hub.start_relay()
    hub.start_worker()
    [message] = hub.wait_until_settled(1)

    assert message.status == "rejected"
    assert "not issued by a trusted CA" in message.status_reason
