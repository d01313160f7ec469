"""The ePUAP simulator's send side (skrytka.nadaj, doreczyciel.dorecz) and WS-Security.

Through Flask's test client, no sockets. Requests are built by zeep clients from the
same WSDLs (SOAP-header parts passed as ``_soapheaders``), answers read back with the
bindings' output deserializers; receipts are checked against upo-hub.xsd and verified
with the hub's own XAdES verifier against the keystore's CA.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree

from hub.errors import SignatureInvalid
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key, verify_envelope
from hub.signing.xades import sign_document, verify_document
from simulators.epuap.receipts import UPO_NS, upo_schema
from simulators.epuap.server import (
    DORECZYCIEL_PATH,
    PULL_PATH,
    SKRYTKA_PATH,
    WYJATEK_BAD_REQUEST,
    WYJATEK_INJECTED,
    WYJATEK_SECURITY,
    WYJATEK_SIGNATURE_INVALID,
    create_app,
)

ROOT = Path(__file__).resolve().parents[2]
WSDL_DIR = ROOT / "wsdl" / "epuap"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OB = "http://wsdl.epuap.gov.pl/obiekty/"
POS = {"pos": UPO_NS}
WARSZAWA = "/umwarszawa/skrytka"  # the sending office's reply skrytka
PRUSZKOW = "/sppruszkow/skrytka"  # the addressee
DECISION = b"<decyzja xmlns='urn:test:decyzja'><numer>WA.1/2024</numer></decyzja>"


class Contract:
    """One WSDL binding of the simulator: build requests with zeep, read answers back."""

    def __init__(self, wsdl: str, binding: str, path: str, namespace: str) -> None:
        self.client = zeep.Client(str(WSDL_DIR / wsdl))
        self.binding = self.client.wsdl.bindings[binding]
        self.service = self.client.create_service(binding, "http://epuap.invalid" + path)
        self.path = path
        self.namespace = namespace

    def envelope(self, operation: str, **values: Any) -> etree._Element:
        return self.client.create_message(self.service, operation, **values)

    def read(self, operation: str, data: bytes):
        return self.binding.get(operation).output.deserialize(etree.fromstring(data))


@pytest.fixture(scope="module")
def skrytka() -> Contract:
    return Contract(
        "skrytka.wsdl",
        "{http://ws.epuap.gov.pl/skrytka/}skrytkaBinding",
        SKRYTKA_PATH,
        "http://ws.epuap.gov.pl/skrytka/",
    )


@pytest.fixture(scope="module")
def doreczyciel() -> Contract:
    return Contract(
        "doreczyciel.wsdl",
        "{http://ws.epuap.gov.pl/doreczyciel/}doreczyciel",
        DORECZYCIEL_PATH,
        "http://ws.epuap.gov.pl/doreczyciel/",
    )


@pytest.fixture(scope="module")
def pull() -> Contract:
    return Contract(
        "pull.wsdl", "{http://ws.epuap.gov.pl/pull/}pull", PULL_PATH, "http://ws.epuap.gov.pl/pull/"
    )


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> Keystore:
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, ["epuap", "146501_1", "1421"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory) -> Keystore:
    """An identity from a CA nobody trusts."""
    directory = tmp_path_factory.mktemp("stranger-keys")
    init_keystore(directory, ["146501_1"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def trust(keystore) -> TrustStore:
    return TrustStore.from_pems([keystore.ca_certificate_pem()])


@pytest.fixture(scope="module")
def office_key(keystore):
    return signing_key(keystore.identity("146501_1"))


@pytest.fixture
def http(keystore):
    """WS-Security off; receipts signed by the keystore's epuap; UPDs issued at once."""
    app = create_app(identity=keystore.identity("epuap"), upd_delay_s=0)
    return app.test_client()


@pytest.fixture
def secured_http(keystore):
    """WS-Security on: trusts the keystore's CA, signs answers as epuap."""
    app = create_app(
        trusted_ca_pems=[keystore.ca_certificate_pem()],
        identity=keystore.identity("epuap"),
        upd_delay_s=0,
    )
    return app.test_client()


def post(http, contract: Contract, operation: str, envelope: etree._Element):
    return http.post(
        contract.path,
        data=etree.tostring(envelope),
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{contract.namespace}{operation}"',
        },
    )


def nadaj_envelope(skrytka: Contract, content: bytes = DECISION, **headers: Any):
    soap_headers = {
        "podmiot": "umwarszawa",
        "adresSkrytki": PRUSZKOW,
        "adresOdpowiedzi": WARSZAWA,
        "czyProbne": False,
        **headers,
    }
    return skrytka.envelope(
        "nadaj",
        nazwaPliku="decyzja.xml",
        typPliku="text/xml",
        zawartosc=content,
        _soapheaders=soap_headers,
    )


def dorecz_envelope(doreczyciel: Contract, content: bytes, **headers: Any):
    soap_headers = {
        "podmiot": "umwarszawa",
        "adresSkrytki": PRUSZKOW,
        "adresOdpowiedzi": WARSZAWA,
        "czyProbne": False,
        "identyfikatorSprawy": "WA.1.2024",
        **headers,
    }
    return doreczyciel.envelope(
        "dorecz",
        nazwaPliku="decyzja.xml",
        typPliku="text/xml",
        zawartosc=content,
        _soapheaders=soap_headers,
    )


def nadaj(http, skrytka: Contract, content: bytes = DECISION, **headers: Any):
    response = post(http, skrytka, "nadaj", nadaj_envelope(skrytka, content, **headers))
    assert response.status_code == 200, response.data
    return skrytka.read("nadaj", response.data)


def dorecz(http, doreczyciel: Contract, content: bytes, **headers: Any):
    envelope = dorecz_envelope(doreczyciel, content, **headers)
    response = post(http, doreczyciel, "dorecz", envelope)
    assert response.status_code == 200, response.data
    return doreczyciel.read("dorecz", response.data)


def pull_call(http, pull: Contract, operation: str, address: str, **extra: Any):
    _, podmiot, nazwa = address.split("/")
    envelope = pull.envelope(
        operation, podmiot=podmiot, nazwaSkrytki=nazwa, adresSkrytki=address, **extra
    )
    return post(http, pull, operation, envelope)


def waiting(http, pull: Contract, address: str) -> int:
    response = pull_call(http, pull, "oczekujaceDokumenty", address)
    assert response.status_code == 200, response.data
    return pull.read("oczekujaceDokumenty", response.data).oczekujace


def pull_next(http, pull: Contract, address: str):
    response = pull_call(http, pull, "pobierzNastepny", address)
    assert response.status_code == 200, response.data
    return pull.read("pobierzNastepny", response.data)


def fault(response) -> tuple[str, int, str]:
    """Return (faultcode, Wyjatek kod, Wyjatek komunikat) of a SOAP Fault answer."""
    assert response.status_code == 500, response.data
    envelope = etree.fromstring(response.data)
    fault_node = envelope.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    wyjatek = fault_node.find(f"detail/{{{OB}}}Wyjatek")
    return (
        fault_node.findtext("faultcode"),
        int(wyjatek.findtext("kod")),
        wyjatek.findtext("komunikat"),
    )


def sha256_b64(content: bytes) -> str:
    return base64.b64encode(hashlib.sha256(content).digest()).decode()


def receipt_field(receipt: bytes, path: str) -> str:
    return etree.fromstring(receipt).xpath(f"string({path})", namespaces=POS)


def signed_envelope(envelope: etree._Element, key) -> etree._Element:
    sign_envelope(envelope, key)
    return envelope


# ---------------------------------------------------------------- nadaj


def test_nadaj_puts_the_document_into_the_addressees_skrytka(http, skrytka, pull):
    nadaj(http, skrytka, daneDodatkowe=b"<meta/>")

    assert waiting(http, pull, PRUSZKOW) == 1
    answer = pull_next(http, pull, PRUSZKOW)
    assert answer.dokument.zawartosc == DECISION
    assert (answer.dokument.nazwaPliku, answer.dokument.typPliku) == ("decyzja.xml", "text/xml")
    assert answer.adresOdpowiedzi == WARSZAWA
    assert answer.daneDodatkowe == b"<meta/>"
    assert (answer.danePodmiotu.identyfikator, answer.danePodmiotu.typOsoby) == (
        "umwarszawa",
        "P",
    )
    assert answer.danePodmiotu.pesel is None


def test_nadaj_answers_with_a_upp_that_validates_and_verifies(http, skrytka, trust, keystore):
    answer = nadaj(http, skrytka)

    assert answer.status.kod == 1
    assert answer.identyfikatorDokumentu != answer.identyfikatorUpp
    assert (answer.zalacznik.nazwaPliku, answer.zalacznik.typPliku) == ("UPP.xml", "text/xml")
    upp = answer.zalacznik.zawartosc
    upo_schema().assertValid(etree.fromstring(upp))
    verified = verify_document(upp, trust)
    assert verified.signer == keystore.identity("epuap").subject
    assert receipt_field(upp, "/pos:Dokument/pos:UPP/pos:IdentyfikatorDokumentu") == (
        answer.identyfikatorDokumentu
    )
    assert receipt_field(upp, "//pos:IdentyfikatorPoswiadczenia") == answer.identyfikatorUpp
    assert receipt_field(upp, "//pos:Adresat/pos:IdentyfikatorPodmiotu") == "sppruszkow"
    assert receipt_field(upp, "//pos:Nadawca/pos:IdentyfikatorPodmiotu") == "umwarszawa"
    skrot = "//pos:InformacjaUzupelniajaca[@TypInformacjiUzupelniajacej='SkrotDokumentu']"
    assert receipt_field(upp, skrot) == sha256_b64(DECISION)


def test_the_upp_schema_refuses_a_receipt_missing_its_document_id(http, skrytka):
    upp = etree.fromstring(nadaj(http, skrytka).zalacznik.zawartosc)
    document_id = upp.find("pos:UPP/pos:IdentyfikatorDokumentu", POS)
    document_id.getparent().remove(document_id)
    assert not upo_schema().validate(upp)


def test_a_trial_nadaj_answers_normally_but_delivers_nothing(http, skrytka, pull):
    answer = nadaj(http, skrytka, czyProbne=True)
    assert answer.status.kod == 1
    assert answer.zalacznik.zawartosc
    assert waiting(http, pull, PRUSZKOW) == 0
    [sent] = http.get("/_sim/sent").json["sent"]
    assert sent["trial"] is True


@pytest.mark.parametrize("address", ["sppruszkow", "/sppruszkow", "/a/b/c", ""])
def test_nadaj_to_a_malformed_address_is_a_client_fault(http, skrytka, address):
    response = post(http, skrytka, "nadaj", nadaj_envelope(skrytka, adresSkrytki=address))
    code, kod, komunikat = fault(response)
    assert (code, kod) == ("soap-env:Client", WYJATEK_BAD_REQUEST)
    assert "adresSkrytki" in komunikat
    assert http.get("/_sim/sent").json["sent"] == []


def test_sent_lists_ids_addresses_and_digest(http, skrytka):
    answer = nadaj(http, skrytka)
    [sent] = http.get("/_sim/sent").json["sent"]
    assert sent["operation"] == "nadaj"
    assert (sent["document_id"], sent["receipt_id"]) == (
        answer.identyfikatorDokumentu,
        answer.identyfikatorUpp,
    )
    assert (sent["address"], sent["reply_address"]) == (PRUSZKOW, WARSZAWA)
    assert sent["sha256_b64"] == sha256_b64(DECISION)
    assert sent["signer"] is None  # WS-Security is off in this app


# ---------------------------------------------------------------- dorecz


def test_dorecz_refuses_an_unsigned_document_naming_the_reason(http, doreczyciel, pull):
    response = post(http, doreczyciel, "dorecz", dorecz_envelope(doreczyciel, DECISION))
    code, kod, komunikat = fault(response)
    assert (code, kod) == ("soap-env:Client", WYJATEK_SIGNATURE_INVALID)
    assert "podpisu XAdES" in komunikat
    assert "carries no ds:Signature" in komunikat
    assert waiting(http, pull, PRUSZKOW) == 0


def test_dorecz_refuses_a_document_changed_after_signing(http, doreczyciel, keystore):
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    tampered = signed.replace(b"WA.1/2024", b"WA.9/2024")
    response = post(http, doreczyciel, "dorecz", dorecz_envelope(doreczyciel, tampered))
    _, kod, komunikat = fault(response)
    assert kod == WYJATEK_SIGNATURE_INVALID
    assert "does not verify" in komunikat


def test_dorecz_takes_a_signed_document_and_the_upd_reaches_the_reply_skrytka(
    http, doreczyciel, pull, trust, keystore
):
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    answer = dorecz(http, doreczyciel, signed)

    assert answer.status.kod == 1
    assert answer.identyfikatorDokumentu
    assert answer.identyfikatorZlecenia
    assert pull_next(http, pull, PRUSZKOW).dokument.zawartosc == signed
    delivered = pull_next(http, pull, WARSZAWA)
    assert (delivered.dokument.nazwaPliku, delivered.dokument.typPliku) == ("UPD.xml", "text/xml")
    upd = delivered.dokument.zawartosc
    upo_schema().assertValid(etree.fromstring(upd))
    assert verify_document(upd, trust).signer == keystore.identity("epuap").subject
    assert receipt_field(upd, "/pos:Dokument/pos:UPD/pos:IdentyfikatorDokumentu") == (
        answer.identyfikatorDokumentu
    )
    assert receipt_field(upd, "//pos:IdentyfikatorSprawy") == "WA.1.2024"
    assert receipt_field(upd, "//pos:Adresat/pos:IdentyfikatorPodmiotu") == "sppruszkow"
    [sent] = http.get("/_sim/sent").json["sent"]
    assert sent["upd"] == "delivered"
    assert sent["document_signer"] == keystore.identity("146501_1").subject


def test_held_upds_arrive_only_when_released(http, doreczyciel, pull, keystore):
    assert http.post("/_sim/upd", json={"hold": True}).json["hold"] is True
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    dorecz(http, doreczyciel, signed)
    dorecz(http, doreczyciel, signed)

    assert waiting(http, pull, WARSZAWA) == 0
    assert [s["upd"] for s in http.get("/_sim/sent").json["sent"]] == ["held", "held"]
    released = http.post("/_sim/upd/release").json
    assert (released["released"], released["held"]) == (2, 0)
    assert waiting(http, pull, WARSZAWA) == 2
    assert [s["upd"] for s in http.get("/_sim/sent").json["sent"]] == ["delivered"] * 2


def test_a_upd_arrives_after_the_configured_delay(http, doreczyciel, pull, keystore):
    http.post("/_sim/upd", json={"delay_s": 0.05})
    dorecz(http, doreczyciel, sign_document(DECISION, keystore.identity("146501_1")))
    assert http.get("/_sim/upd").json["scheduled"] == 1
    deadline = time.monotonic() + 5
    while waiting(http, pull, WARSZAWA) == 0:
        assert time.monotonic() < deadline, "the UPD never arrived"
        time.sleep(0.01)
    assert http.get("/_sim/upd").json["scheduled"] == 0


def test_a_trial_dorecz_checks_the_signature_but_delivers_nothing(
    http, doreczyciel, pull, keystore
):
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    dorecz(http, doreczyciel, signed, czyProbne=True)
    assert waiting(http, pull, PRUSZKOW) == waiting(http, pull, WARSZAWA) == 0
    [sent] = http.get("/_sim/sent").json["sent"]
    assert (sent["trial"], sent["upd"]) == (True, "none")


def test_dorecz_needs_a_reply_address_for_its_upd(http, doreczyciel, keystore):
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    envelope = dorecz_envelope(doreczyciel, signed, adresOdpowiedzi=None)
    _, kod, komunikat = fault(post(http, doreczyciel, "dorecz", envelope))
    assert kod == WYJATEK_BAD_REQUEST
    assert "adresOdpowiedzi" in komunikat


@pytest.mark.parametrize("payload", [{}, {"hold": "yes"}, {"delay_s": -1}, {"delay_s": True}])
def test_upd_settings_are_validated(http, payload):
    assert http.post("/_sim/upd", json=payload).status_code == 400


def test_reset_forgets_sent_documents_and_held_upds(http, doreczyciel, keystore):
    http.post("/_sim/upd", json={"hold": True, "delay_s": 3})
    dorecz(http, doreczyciel, sign_document(DECISION, keystore.identity("146501_1")))
    http.post("/_sim/reset")
    assert http.get("/_sim/sent").json["sent"] == []
    assert http.get("/_sim/upd").json == {"hold": False, "delay_s": 0, "held": 0, "scheduled": 0}


@pytest.mark.parametrize("operation", ["nadaj", "dorecz"])
def test_faults_can_be_armed_for_the_send_operations(
    http, skrytka, doreczyciel, keystore, operation
):
    armed = http.post("/_sim/faults", json={"operation": operation, "kind": "soap_fault"})
    assert armed.status_code == 201
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    envelope = (
        nadaj_envelope(skrytka) if operation == "nadaj" else dorecz_envelope(doreczyciel, signed)
    )
    contract = skrytka if operation == "nadaj" else doreczyciel
    assert fault(post(http, contract, operation, envelope))[:2] == (
        "soap-env:Server",
        WYJATEK_INJECTED,
    )
    assert post(http, contract, operation, envelope).status_code == 200


# ---------------------------------------------------------------- WS-Security


def test_with_a_trust_store_an_unsigned_request_is_refused(secured_http, skrytka, keystore):
    response = post(secured_http, skrytka, "nadaj", nadaj_envelope(skrytka))
    code, kod, komunikat = fault(response)
    assert (code, kod) == ("wsse:InvalidSecurity", WYJATEK_SECURITY)
    assert "no wsse:Security header" in komunikat
    # The Fault itself is signed, so a WS-Security client can read it.
    epuap = keystore.identity("epuap")
    verify_envelope(etree.fromstring(response.data), expected_certificate_pem=epuap.certificate_pem)
    assert secured_http.get("/_sim/sent").json["sent"] == []


def test_with_a_trust_store_a_signed_request_gets_a_signed_answer(
    secured_http, skrytka, keystore, office_key
):
    envelope = signed_envelope(nadaj_envelope(skrytka), office_key)
    response = post(secured_http, skrytka, "nadaj", envelope)
    assert response.status_code == 200, response.data
    answer = etree.fromstring(response.data)
    epuap = keystore.identity("epuap")
    signer = verify_envelope(answer, expected_certificate_pem=epuap.certificate_pem)
    assert signer == epuap.certificate
    assert skrytka.read("nadaj", response.data).status.kod == 1
    [sent] = secured_http.get("/_sim/sent").json["sent"]
    assert sent["signer"] == keystore.identity("146501_1").subject


def test_without_a_podmiot_header_the_sender_is_the_signers_common_name(
    secured_http, skrytka, office_key
):
    envelope = signed_envelope(nadaj_envelope(skrytka, podmiot=None), office_key)
    assert post(secured_http, skrytka, "nadaj", envelope).status_code == 200
    [sent] = secured_http.get("/_sim/sent").json["sent"]
    assert sent["podmiot"] == "146501_1"


def test_a_request_signed_under_an_untrusted_ca_is_refused(secured_http, skrytka, stranger):
    key = signing_key(stranger.identity("146501_1"))
    response = post(secured_http, skrytka, "nadaj", signed_envelope(nadaj_envelope(skrytka), key))
    code, kod, komunikat = fault(response)
    assert (code, kod) == ("wsse:InvalidSecurity", WYJATEK_SECURITY)
    assert "not issued by a trusted CA" in komunikat


def test_a_request_changed_after_signing_is_refused(secured_http, skrytka, office_key):
    envelope = signed_envelope(nadaj_envelope(skrytka), office_key)
    envelope.find(f".//{{{OB}}}Dokument/nazwaPliku").text = "podmienione.xml"
    _, kod, komunikat = fault(post(secured_http, skrytka, "nadaj", envelope))
    assert kod == WYJATEK_SECURITY
    assert "does not match" in komunikat


def test_with_a_trust_store_the_pull_service_also_requires_signatures(
    secured_http, pull, office_key
):
    assert fault(pull_call(secured_http, pull, "oczekujaceDokumenty", WARSZAWA))[1] == (
        WYJATEK_SECURITY
    )
    _, podmiot, nazwa = WARSZAWA.split("/")
    envelope = pull.envelope(
        "oczekujaceDokumenty", podmiot=podmiot, nazwaSkrytki=nazwa, adresSkrytki=WARSZAWA
    )
    response = post(
        secured_http, pull, "oczekujaceDokumenty", signed_envelope(envelope, office_key)
    )
    assert response.status_code == 200, response.data
    assert pull.read("oczekujaceDokumenty", response.data).oczekujace == 0


def test_dorecz_refuses_a_document_signed_under_an_untrusted_ca(
    secured_http, doreczyciel, stranger, office_key
):
    signed = sign_document(DECISION, stranger.identity("146501_1"))
    envelope = signed_envelope(dorecz_envelope(doreczyciel, signed), office_key)
    _, kod, komunikat = fault(post(secured_http, doreczyciel, "dorecz", envelope))
    assert kod == WYJATEK_SIGNATURE_INVALID
    assert "not issued by a trusted CA" in komunikat


def test_a_bad_signature_fault_spoils_the_signed_answer(
    secured_http, skrytka, keystore, office_key
):
    secured_http.post("/_sim/faults", json={"operation": "nadaj", "kind": "bad_signature"})
    response = post(
        secured_http, skrytka, "nadaj", signed_envelope(nadaj_envelope(skrytka), office_key)
    )
    assert response.status_code == 200
    epuap = keystore.identity("epuap")
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_envelope(
            etree.fromstring(response.data), expected_certificate_pem=epuap.certificate_pem
        )


def test_identity_reports_the_platform_certificate(secured_http, keystore):
    identity = secured_http.get("/_sim/identity").json
    epuap = keystore.identity("epuap")
    assert identity["certificate_pem"].encode() == epuap.certificate_pem
    assert (identity["subject"], identity["wssecurity"]) == (epuap.subject, True)


def test_without_a_keystore_receipts_are_signed_by_a_throwaway_identity(skrytka):
    http = create_app(upd_delay_s=0).test_client()
    upp = nadaj(http, skrytka).zalacznik.zawartosc
    ca_pem = http.get("/_sim/identity").json["ca_certificate_pem"].encode()
    verified = verify_document(upp, TrustStore.from_pems([ca_pem]))
    assert "epuap" in verified.signer
