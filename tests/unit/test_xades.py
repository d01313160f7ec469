"""XAdES-BES: documents the hub signs verify, and each way of breaking a signature is named."""

import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import DigestAlgorithm, SignatureMethod

from hub.errors import MalformedDocument, SignatureInvalid
from hub.region import load_region
from hub.settings import embedded_region_path
from hub.signing.keystore import Keystore, SigningIdentity, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, sign_enveloping, verify_document, verify_signatures

PISMO = (
    b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">'
    b"<wnio:Tytul>Wniosek</wnio:Tytul><wnio:Tresc>Prosz\xc4\x99 o informacj\xc4\x99</wnio:Tresc>"
    b"</wnio:Dokument>"
)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, ["146501_1", "146301_1"])
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
    with pytest.raises(SignatureInvalid, match="carries no ds:Signature"):
        verify_document(PISMO, trust)


def test_entity_expansion_is_refused_before_any_signature_check(trust):
    bomb = b'<!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]><a>&y;</a>'
    with pytest.raises(MalformedDocument, match="DOCTYPE"):
        verify_document(bomb, trust)


def test_a_certificate_that_had_expired_when_it_signed_is_refused(keystore):
    ca_key = serialization.load_pem_private_key(
        (keystore.directory.with_name(f"{keystore.directory.name}-ca") / "ca.key.pem").read_bytes(),
        None,
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


def test_an_enveloping_signature_verifies_and_returns_the_document_it_holds(keystore, trust):
    verified = verify_document(sign_enveloping(PISMO, keystore.identity("146501_1")), trust)
    assert verified.form == "enveloping"
    assert verified.signed_document.tag == "{http://crd.gov.pl/wzor/2013/12/12/1410/}Dokument"
    assert verified.signed_document.findtext("{*}Tytul") == "Wniosek"


def test_a_changed_word_inside_an_enveloping_signature_breaks_it(keystore, trust):
    signed = sign_enveloping(PISMO, keystore.identity("146501_1"))
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_document(signed.replace(b"Wniosek", b"Skarga!"), trust)


def test_a_plain_xml_dsig_signature_is_verified_and_named_as_such(keystore, trust):
    identity = keystore.identity("146501_1")
    signed = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256
    ).sign(etree.fromstring(PISMO), key=identity.private_key, cert=[identity.certificate])
    verified = verify_document(etree.tostring(signed), trust)
    assert [finding.kind for finding in verified.findings] == ["xmldsig"]
    assert verified.signed_at is None


def test_a_countersigned_document_reports_each_signature_with_its_own_result(keystore, trust):
    # The second enveloped signature covers the first, so the first no longer matches the
    # document: each is reported, and the document counts as signed by the valid one.
    once = sign_document(PISMO, keystore.identity("146501_1"))
    twice = sign_document(once, keystore.identity("146301_1"))
    findings = verify_signatures(twice, trust)
    assert [(finding.position, finding.valid) for finding in findings] == [(1, False), (2, True)]
    assert "does not verify" in (findings[0].reason or "")
    assert "CN=146301_1" in verify_document(twice, trust).signer


def test_a_signature_wrapped_inside_another_root_is_refused(keystore, trust):
    signed = sign_document(PISMO, keystore.identity("146501_1"))
    body = signed.split(b"?>", 1)[1]
    wrapped = b"<Wrapper><Evil>Przelej 1000 PLN</Evil><Original>" + body + b"</Original></Wrapper>"
    with pytest.raises(SignatureInvalid, match="does not cover the whole document"):
        verify_document(wrapped, trust)


def test_an_enveloping_signature_with_a_second_object_of_the_same_id_is_refused(keystore, trust):
    signed = etree.fromstring(sign_enveloping(PISMO, keystore.identity("146501_1")))
    original = signed.find("{http://www.w3.org/2000/09/xmldsig#}Object[@Id='object']")
    assert original is not None
    forged = etree.fromstring(etree.tostring(original).replace(b"Wniosek", b"Skarga!"))
    signed.insert(1, forged)
    with pytest.raises(SignatureInvalid):
        verify_document(etree.tostring(signed), trust)


def test_a_signature_by_a_certificate_that_has_since_expired_still_verifies(keystore):
    # Validity is judged at signing time: a decision signed last year stays signed.
    ca_key = serialization.load_pem_private_key(
        (keystore.directory.with_name(f"{keystore.directory.name}-ca") / "ca.key.pem").read_bytes(),
        None,
    )
    ca = x509.load_pem_x509_certificate(keystore.ca_certificate_pem())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    expires = now + datetime.timedelta(seconds=2)
    short_lived = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "past")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(expires)
        .sign(ca_key, hashes.SHA256())
    )
    signed = sign_document(PISMO, SigningIdentity("past", short_lived, key))
    time.sleep(max(0.0, (expires - datetime.datetime.now(datetime.UTC)).total_seconds()) + 1.1)
    trust = TrustStore.from_pems([keystore.ca_certificate_pem()])
    assert verify_document(signed, trust).signer.endswith("CN=past")


def _signing_offices():
    """The demo's offices and one of every kind: a key per office of the whole region
    (357) would make this module take half a minute for no more coverage."""
    offices = list(load_region(embedded_region_path()).offices.values())
    one_per_kind = {office.kind: office.id for office in reversed(offices)}
    return sorted({office.id for office in offices[:17]} | set(one_per_kind.values()))


@pytest.mark.parametrize("office", _signing_offices())
def test_offices_of_the_default_region_sign_documents_that_verify(
    office, region_keystore, region_trust
):
    verified = verify_document(sign_document(PISMO, region_keystore.identity(office)), region_trust)
    assert f"CN={office}" in verified.signer


@pytest.fixture(scope="module")
def region_keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("region-keys")
    init_keystore(directory, _signing_offices())
    return Keystore(directory)


@pytest.fixture(scope="module")
def region_trust(region_keystore):
    return TrustStore.from_pems([region_keystore.ca_certificate_pem()])
