"""XAdES-BES: documents the hub signs verify, and each way of breaking a signature is named."""

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.errors import MalformedDocument, SignatureInvalid
from hub.signing.keystore import Keystore, SigningIdentity, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, verify_document

PISMO = (
    b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">'
    b"<wnio:Tytul>Wniosek</wnio:Tytul><wnio:Tresc>Prosz\xc4\x99 o informacj\xc4\x99</wnio:Tresc>"
    b"</wnio:Dokument>"
)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, ["146501_1"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def trust(keystore):
    return TrustStore.from_pems([keystore.ca_certificate_pem()])


def test_a_signed_document_verifies_and_names_its_signer(keystore, trust):
    verified = verify_document(sign_document(PISMO, keystore.identity("146501_1")), trust)
    assert "CN=146501_1" in verified.signer
    assert verified.signed_at is not None
    assert verified.signed_document.tag == "{http://crd.gov.pl/wzor/2013/12/12/1410/}Dokument"


def test_a_changed_word_breaks_the_signature(keystore, trust):
    signed = sign_document(PISMO, keystore.identity("146501_1"))
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_document(signed.replace(b"Wniosek", b"Skarga!"), trust)


def test_a_signer_outside_the_trust_store_is_refused(keystore, tmp_path):
    init_keystore(tmp_path, ["146501_1"])
    stranger = Keystore(tmp_path).identity("146501_1")
    with pytest.raises(SignatureInvalid, match="not issued by a trusted CA"):
        verify_document(
            sign_document(PISMO, stranger), TrustStore.from_pems([keystore.ca_certificate_pem()])
        )


def test_an_unsigned_document_is_refused(trust):
    with pytest.raises(SignatureInvalid, match="no enveloped ds:Signature"):
        verify_document(PISMO, trust)


def test_entity_expansion_is_refused_before_any_signature_check(trust):
    bomb = b'<!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]><a>&y;</a>'
    with pytest.raises(MalformedDocument, match="DOCTYPE"):
        verify_document(bomb, trust)


def test_a_certificate_that_had_expired_when_it_signed_is_refused(keystore):
    ca_key = serialization.load_pem_private_key(
        (keystore.directory / "ca.key.pem").read_bytes(), None
    )
    ca = x509.load_pem_x509_certificate(keystore.ca_certificate_pem())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "expired")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    trust = TrustStore.from_pems([keystore.ca_certificate_pem()])
    with pytest.raises(SignatureInvalid, match="was not valid at"):
        verify_document(sign_document(PISMO, SigningIdentity("expired", expired, key)), trust)
