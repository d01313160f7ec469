"""WS-Security on SOAP envelopes: what the hub signs verifies, and every tampering is named."""

import copy
import datetime

import pytest
from lxml import etree

from hub.errors import SignatureInvalid
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key, verify_envelope

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
QUERY = "<ob:Zapytanie xmlns:ob='urn:x'><podmiot>umwarszawa</podmiot></ob:Zapytanie>"


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, ["146501_1", "epuap"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def other_ca_keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("other-keys")
    init_keystore(directory, ["146501_1"])
    return Keystore(directory)


def envelope():
    return etree.fromstring(
        f"<s:Envelope xmlns:s='{SOAP}'><s:Body>{QUERY}</s:Body></s:Envelope>".encode()
    )


def signed(keystore, name="146501_1"):
    document = envelope()
    sign_envelope(document, signing_key(keystore.identity(name)))
    return etree.fromstring(etree.tostring(document))


def trusting(keystore):
    return {"trust": TrustStore.from_pems([keystore.ca_certificate_pem()])}


def test_a_signed_request_verifies_against_the_trusted_ca(keystore):
    signer = verify_envelope(signed(keystore), **trusting(keystore))
    assert "146501_1" in signer.subject.rfc4514_string()


def test_a_signed_answer_verifies_against_the_expected_platform_certificate(keystore):
    platform = keystore.identity("epuap")
    verify_envelope(signed(keystore, "epuap"), expected_certificate_pem=platform.certificate_pem)


def test_an_answer_signed_by_someone_else_is_refused(keystore):
    platform = keystore.identity("epuap")
    with pytest.raises(SignatureInvalid, match="not by the expected"):
        verify_envelope(signed(keystore), expected_certificate_pem=platform.certificate_pem)


def test_a_certificate_from_an_untrusted_ca_is_refused(keystore, other_ca_keystore):
    with pytest.raises(SignatureInvalid, match="not issued by a trusted CA"):
        verify_envelope(signed(other_ca_keystore), **trusting(keystore))


def test_a_modified_body_is_refused(keystore):
    document = signed(keystore)
    document.find(f".//{{{SOAP}}}Body//podmiot").text = "ugjablonna"
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_envelope(document, **trusting(keystore))


def test_a_body_swapped_under_the_signature_is_refused(keystore):
    document = signed(keystore)
    body = document.find(f"{{{SOAP}}}Body")
    forged = copy.deepcopy(body)
    forged.attrib.clear()
    document.replace(body, forged)
    document.find(f"{{{SOAP}}}Header").append(body)  # the signed original hides in the header
    with pytest.raises(SignatureInvalid, match="Body is not covered"):
        verify_envelope(document, **trusting(keystore))


def test_an_unsigned_message_is_refused(keystore):
    with pytest.raises(SignatureInvalid, match="no wsse:Security header"):
        verify_envelope(envelope(), **trusting(keystore))


def test_an_expired_message_is_refused(keystore):
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    with pytest.raises(SignatureInvalid, match="expired"):
        verify_envelope(signed(keystore), **trusting(keystore), now=later)


def test_identities_are_loaded_once(keystore):
    assert keystore.identity("146501_1") is keystore.identity("146501_1")
