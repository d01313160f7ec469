"""The hub's own ESP: a pushed filing is stored, answered with its id and a signed UPP."""

from __future__ import annotations

import base64
import shutil

import pytest
import zeep
from lxml import etree

from adapters.epuap.contract import SKRYTKA_BINDING, SKRYTKA_WSDL
from adapters.epuap.esp import ESP_PATH
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key
from hub.signing.xades import verify_document
from hub.store.models import MessageRow, ReceiptRow
from hub.web import create_app

PISMO = (
    b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">'
    b"<wnio:Tytul>Wniosek o informacj\xc4\x99 publiczn\xc4\x85</wnio:Tytul></wnio:Dokument>"
)
OBIEKTY = "http://wsdl.epuap.gov.pl/obiekty/"


@pytest.fixture
def esp_settings(settings, region_path):
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[inbound]]\nname = "esp"\nkind = "epuap-esp"\n'
            'url = "/epuap/esp"\nws_security = true\n'
        )
    init_keystore(settings.keys, ["146501_1", "1421", "ePUAP-nadawca"])
    settings.trust.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.keys / "ca.pem", settings.trust / "ca.pem")
    return settings


@pytest.fixture
def client(esp_settings, store):
    return create_app(esp_settings, store).test_client()


def nadaj_request(keystore, mailbox="/umwarszawa/skrytka", content=PISMO, signed=True):
    soap = zeep.Client(str(SKRYTKA_WSDL))
    service = soap.create_service(SKRYTKA_BINDING, "http://hub/epuap/esp")
    envelope = soap.create_message(
        service,
        "nadaj",
        nazwaPliku="pismo.xml",
        typPliku="text/xml",
        zawartosc=content,
        _soapheaders={
            "podmiot": "jan-kowalski",
            "adresSkrytki": mailbox,
            "adresOdpowiedzi": "/jan-kowalski/skrytka",
            "czyProbne": False,
            "daneDodatkowe": b"",
        },
    )
    if signed:
        sign_envelope(envelope, signing_key(keystore.identity("ePUAP-nadawca")))
    return etree.tostring(envelope)


def answer_of(response):
    root = etree.fromstring(response.data)
    return root.find(f".//{{{OBIEKTY}}}OdpowiedzSkrytki"), root


def fault_code(response):
    root = etree.fromstring(response.data)
    return int(root.findtext(f".//{{{OBIEKTY}}}Wyjatek/kod"))


def test_a_pushed_filing_is_stored_and_answered_with_its_id_and_a_signed_upp(
    client, esp_settings, store
):
    keystore = Keystore(esp_settings.keys)
    response = client.post(ESP_PATH, data=nadaj_request(keystore), content_type="text/xml")

    assert response.status_code == 200, response.data
    answer, _ = answer_of(response)
    document_id = answer.findtext("identyfikatorDokumentu")
    assert answer.findtext("status/kod") == "1"
    assert store.message_status(document_id).value == "accepted"
    upp = base64.b64decode(answer.findtext("zalacznik/zawartosc"))
    verified = verify_document(upp, TrustStore.from_directory(esp_settings.trust))
    assert "CN=146501_1" in verified.signer
    with store.session() as session:
        [receipt] = session.query(ReceiptRow).all()
    assert (receipt.message_id, receipt.kind, receipt.signature_valid) == (
        document_id,
        "UPP-issued",
        True,
    )


def test_the_same_filing_pushed_twice_is_stored_once_under_one_id(client, esp_settings, store):
    keystore = Keystore(esp_settings.keys)
    first, _ = answer_of(
        client.post(ESP_PATH, data=nadaj_request(keystore), content_type="text/xml")
    )
    second, _ = answer_of(
        client.post(ESP_PATH, data=nadaj_request(keystore), content_type="text/xml")
    )

    assert first.findtext("identyfikatorDokumentu") == second.findtext("identyfikatorDokumentu")
    assert store.count_unsent_outbox() == 1


def test_an_unsigned_push_is_refused_with_the_signature_code(client, esp_settings, store):
    response = client.post(
        ESP_PATH,
        data=nadaj_request(Keystore(esp_settings.keys), signed=False),
        content_type="text/xml",
    )
    assert response.status_code == 500
    assert fault_code(response) == 13
    assert store.count_unsent_outbox() == 0


def test_a_push_to_a_mailbox_no_office_has_is_refused(client, esp_settings):
    request = nadaj_request(Keystore(esp_settings.keys), mailbox="/nieznany/skrytka")
    response = client.post(ESP_PATH, data=request, content_type="text/xml")
    assert fault_code(response) == 11
    assert b"/nieznany/skrytka" in response.data


def test_a_malformed_document_is_refused_and_kept_as_rejected(client, esp_settings, store):
    request = nadaj_request(Keystore(esp_settings.keys), content=b"<wnio:Dokument>")
    response = client.post(ESP_PATH, data=request, content_type="text/xml")
    assert fault_code(response) == 12
    with store.session() as session:
        [message] = session.query(MessageRow).all()
    assert message.status == "rejected"
    assert message.body == b"<wnio:Dokument>"


@pytest.mark.parametrize(
    "body",
    [b"not xml", b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', b"<a>plain xml, not SOAP</a>"],
)
def test_hostile_or_broken_requests_get_a_client_fault(client, body):
    response = client.post(ESP_PATH, data=body, content_type="text/xml")
    assert response.status_code == 500
    assert fault_code(response) == 10
