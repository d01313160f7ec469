"""A Profil Zaufany signer is recorded only from signed properties of the PZ certificate.

Radom's office key (146301_1) signs documents every day; nothing it adds outside what
it signs, and nothing it signs itself, may make the hub record a citizen's Profil
Zaufany signature. Only the PZ signing certificate's own signed ClaimedRole does.
"""

import datetime
import json

import pytest
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESSigner

from hub.envelope import Address, Envelope
from hub.signing.keystore import Keystore, SigningIdentity, init_keystore
from hub.signing.steps import SIGNATURE_CHECKS, verify_signature
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
RADOM = "146301_1"
PZ = "profil-zaufany"
PODPIS_ZP = (
    '<ppZP:PodpisZP xmlns:ppZP="http://crd.gov.pl/xml/schematy/ppzp/">'
    "<ppZP:DaneZPOsobyFizycznej><ppZP:Imie>Jan</ppZP:Imie>"
    "<ppZP:Nazwisko>Kowalski</ppZP:Nazwisko></ppZP:DaneZPOsobyFizycznej></ppZP:PodpisZP>"
)
WNIOSEK = b'<w:Wniosek xmlns:w="urn:test:wniosek"><w:Tresc>Prosze</w:Tresc></w:Wniosek>'
FORGED_SIGNING_TIME = "2001-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, [RADOM, PZ])
    return Keystore(directory)


@pytest.fixture(scope="module")
def citizens(keystore):
    # The offices' CA is listed for citizens here, so Radom's signature itself is valid:
    # what is tested is only whether it can pass for a Profil Zaufany one.
    return TrustStore.from_pems([keystore.ca_certificate_pem()])


@pytest.fixture(scope="module")
def profil_zaufany(keystore):
    return TrustStore.from_pems([keystore.identity(PZ).certificate_pem])


def sign_with_roles(identity: SigningIdentity, roles: list[str]) -> bytes:
    signer = XAdESSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        claimed_roles=roles,
    )
    signed = signer.sign(
        etree.fromstring(WNIOSEK), key=identity.private_key, cert=[identity.certificate]
    )
    return etree.tostring(signed)


def with_unsigned_claimed_role(signed: bytes, *, first: bool) -> bytes:
    """``signed`` with a ds:Object holding SignedProperties that no reference covers."""
    root = etree.fromstring(signed)
    signature = root.find(f"{{{DS}}}Signature")
    target = f"#{signature.get('Id')}"
    forged = etree.fromstring(
        f'<ds:Object xmlns:ds="{DS}" xmlns:xades="{XADES}">'
        f'<xades:QualifyingProperties Target="{target}">'
        '<xades:SignedProperties Id="forged"><xades:SignedSignatureProperties>'
        f"<xades:SigningTime>{FORGED_SIGNING_TIME}</xades:SigningTime>"
        "<xades:SignerRole><xades:ClaimedRoles>"
        f"<xades:ClaimedRole>{PODPIS_ZP}</xades:ClaimedRole>"
        "</xades:ClaimedRoles></xades:SignerRole></xades:SignedSignatureProperties>"
        "</xades:SignedProperties></xades:QualifyingProperties></ds:Object>"
    )
    objects = signature.findall(f"{{{DS}}}Object")
    if first:
        objects[0].addprevious(forged)
    else:
        signature.append(forged)
    return etree.tostring(root)


def record_of(document: bytes, citizens, profil_zaufany) -> dict:
    step = verify_signature(citizens, required=False, profil_zaufany=profil_zaufany)
    checked = step(
        Envelope(
            document_type="urn:test:wniosek",
            source="epuap",
            destination=Address("1421"),
            body=document,
        )
    )
    [record] = json.loads(checked.headers[SIGNATURE_CHECKS])
    return record


@pytest.mark.parametrize("first", [True, False], ids=["before-the-signed-object", "appended"])
def test_an_unsigned_claimed_role_added_to_an_office_signature_is_not_profil_zaufany(
    keystore, citizens, first
):
    signed = sign_document(WNIOSEK, keystore.identity(RADOM))
    forged = with_unsigned_claimed_role(signed, first=first)
    # Even with Radom's CA on the Profil Zaufany list, the role is not in what was signed.
    lenient_pz = TrustStore.from_pems([keystore.ca_certificate_pem()])

    record = record_of(forged, citizens, lenient_pz)

    assert record["valid"] is True
    assert record["method"] == "xades"
    assert "CN=146301_1" in record["signer"]
    assert "Kowalski" not in json.dumps(record)
    assert record["signed_at"] != FORGED_SIGNING_TIME
    signed_at = datetime.datetime.fromisoformat(record["signed_at"])
    assert signed_at > datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def test_a_signed_claimed_role_of_an_office_key_is_not_profil_zaufany(
    keystore, citizens, profil_zaufany
):
    signed = sign_with_roles(keystore.identity(RADOM), [PODPIS_ZP])

    record = record_of(signed, citizens, profil_zaufany)

    assert (record["valid"], record["method"]) == (True, "xades")
    assert "CN=146301_1" in record["signer"]


def test_a_genuine_profil_zaufany_signature_names_the_citizen(keystore, citizens, profil_zaufany):
    signed = sign_with_roles(keystore.identity(PZ), [PODPIS_ZP])

    record = record_of(signed, citizens, profil_zaufany)

    assert record["valid"] is True
    assert (record["method"], record["signer"]) == ("profil-zaufany", "Jan Kowalski")
    assert record["covers_document"] is True


def test_a_profil_zaufany_signature_with_a_broken_digest_names_no_one(
    keystore, citizens, profil_zaufany
):
    signed = sign_with_roles(keystore.identity(PZ), [PODPIS_ZP])

    record = record_of(signed.replace(b"Prosze", b"Zadam!"), citizens, profil_zaufany)

    assert record["valid"] is False
    assert record["method"] == "xades"
    assert "Kowalski" not in json.dumps(record)


def test_without_a_profil_zaufany_list_no_signer_is_recognised_as_one(keystore, citizens):
    signed = sign_with_roles(keystore.identity(PZ), [PODPIS_ZP])

    record = record_of(signed, citizens, None)

    assert (record["valid"], record["method"]) == (True, "xades")
