"""The hub's seal on deliveries to legacy systems: any verifier checks it; nothing changes."""

import base64

import pytest
from lxml import etree

from hub.envelope import Address, Envelope
from hub.errors import SignatureInvalid
from hub.signing.keystore import HUB_IDENTITY, Keystore, init_keystore
from hub.signing.seal import SEAL_NAMESPACE, open_seal, seal
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, verify_document
from simulators.eod.seal_check import SealRejected, unseal

PISMO = (
    '<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">'
    "<wnio:Tresc>Proszę o wydanie zaświadczenia</wnio:Tresc></wnio:Dokument>"
).encode()


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, [HUB_IDENTITY, "146501_1"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def trust(keystore):
    return TrustStore.from_pems([keystore.ca_certificate_pem()])


def delivery(body=PISMO):
    return Envelope(
        document_type="http://crd.gov.pl/wzor/2013/12/12/1410/",
        source="epuap",
        destination=Address("146501_1", "eod"),
        body=body,
        correlation_id="sprawa-1",
    )


def test_a_sealed_delivery_opens_to_the_same_bytes_and_ids(keystore, trust):
    envelope = delivery()
    opened = open_seal(seal(envelope, keystore.identity(HUB_IDENTITY)), trust)
    assert opened.document == PISMO
    assert (opened.envelope_id, opened.correlation_id) == (str(envelope.envelope_id), "sprawa-1")
    assert "CN=hub" in opened.sealed_by


def test_the_citizens_own_signature_survives_the_seal(keystore, trust):
    signed = sign_document(PISMO, keystore.identity("146501_1"))
    opened = open_seal(seal(delivery(signed), keystore.identity(HUB_IDENTITY)), trust)
    assert "CN=146501_1" in verify_document(opened.document, trust).signer


def test_an_independent_verifier_opens_the_hubs_seal(keystore):
    sealed = seal(delivery(), keystore.identity(HUB_IDENTITY))
    assert unseal(sealed, keystore.ca_certificate_pem()) == PISMO


def test_a_document_swapped_inside_the_seal_is_refused_by_both_verifiers(keystore, trust):
    sealed = etree.fromstring(seal(delivery(), keystore.identity(HUB_IDENTITY)))
    document = sealed.find(f"{{{SEAL_NAMESPACE}}}Document")
    document.text = base64.b64encode(PISMO.replace("zaświadczenia".encode(), b"zgody")).decode()
    forged = etree.tostring(sealed)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        open_seal(forged, trust)
    with pytest.raises(SealRejected, match="does not verify"):
        unseal(forged, keystore.ca_certificate_pem())


def test_a_seal_by_another_ca_is_refused_by_both_verifiers(keystore, trust, tmp_path):
    init_keystore(tmp_path, [HUB_IDENTITY])
    sealed = seal(delivery(), Keystore(tmp_path).identity(HUB_IDENTITY))
    with pytest.raises(SignatureInvalid, match="not issued by a trusted CA"):
        open_seal(sealed, trust)
    with pytest.raises(SealRejected, match="not issued by the trusted CA"):
        unseal(sealed, keystore.ca_certificate_pem())
