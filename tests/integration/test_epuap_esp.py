"""The hub's own ESP: a pushed filing is stored, answered with its id and a signed UPP."""

from __future__ import annotations

import base64

import pytest
import zeep
from lxml import etree

from adapters.epuap.contract import SKRYTKA_BINDING, SKRYTKA_WSDL
from adapters.epuap.esp import ESP_PATH
from hub.errors import ConfigurationError
from hub.signing.keystore import Keystore, init_test_pki
from hub.signing.trust import OFFICES, TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key
from hub.signing.xades import verify_document
from hub.store.models import MessageRow, ReceiptRow
from hub.store.quarantine import quarantined
from hub.web import create_app

PISMO = (
    b'<wnio:Dokument xmlns:wnio="http://crd.gov.pl/wzor/2013/12/12/1410/">'
    b"<wnio:Tytul>Wniosek o informacj\xc4\x99 publiczn\xc4\x85</wnio:Tytul></wnio:Dokument>"
)
OBIEKTY = "http://wsdl.epuap.gov.pl/obiekty/"
RADOM = "146301_1"


@pytest.fixture
def esp_settings(settings, region_path):
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[inbound]]\nname = "esp"\nkind = "epuap-esp"\n'
            'url = "/epuap/esp"\nws_security = true\n'
        )
    init_test_pki(
        settings.keys,
        settings.trust,
        ["146501_1", "1421", RADOM, "epuap"],
        platforms_dir=settings.var_dir / "platforms",
    )
    return settings


@pytest.fixture
def platform(esp_settings):
    """ePUAP's own identity, as the platform (the simulator) holds it: out of the hub's keys."""
    return Keystore(esp_settings.var_dir / "platforms").identity("epuap")


@pytest.fixture
def client(esp_settings, store):
    return create_app(esp_settings, store).test_client()


def nadaj_request(platform, mailbox="/umwarszawa/skrytka", content=PISMO, signed=True):
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
        sign_envelope(envelope, signing_key(platform))
    return etree.tostring(envelope)


def answer_of(response):
    root = etree.fromstring(response.data)
    return root.find(f".//{{{OBIEKTY}}}OdpowiedzSkrytki"), root


def fault_code(response):
    root = etree.fromstring(response.data)
    return int(root.findtext(f".//{{{OBIEKTY}}}Wyjatek/kod"))


def test_a_pushed_filing_is_stored_and_answered_with_its_id_and_a_signed_upp(
    client, esp_settings, store, platform
):
    response = client.post(ESP_PATH, data=nadaj_request(platform), content_type="text/xml")

    assert response.status_code == 200, response.data
    answer, _ = answer_of(response)
    document_id = answer.findtext("identyfikatorDokumentu")
    assert answer.findtext("status/kod") == "1"
    assert store.message_status(document_id).value == "accepted"
    upp = base64.b64decode(answer.findtext("zalacznik/zawartosc"))
    verified = verify_document(upp, TrustStore.from_directory(esp_settings.trust / OFFICES))
    assert "CN=146501_1" in verified.signer
    with store.session() as session:
        [receipt] = session.query(ReceiptRow).all()
    assert (receipt.message_id, receipt.kind, receipt.signature_valid) == (
        document_id,
        "UPP-issued",
        True,
    )


def test_the_same_filing_pushed_twice_is_stored_once_under_one_id(client, store, platform):
    first, _ = answer_of(
        client.post(ESP_PATH, data=nadaj_request(platform), content_type="text/xml")
    )
    second, _ = answer_of(
        client.post(ESP_PATH, data=nadaj_request(platform), content_type="text/xml")
    )

    assert first.findtext("identyfikatorDokumentu") == second.findtext("identyfikatorDokumentu")
    assert store.count_unsent_outbox() == 1


def office_signed_request(esp_settings):
    """A push signed by Radom's office certificate, issued by the same CA as ePUAP's."""
    request = nadaj_request(None, signed=False)
    envelope = etree.fromstring(request)
    sign_envelope(envelope, signing_key(Keystore(esp_settings.keys).identity(RADOM)))
    return etree.tostring(envelope)


def broken_signature_request(platform):
    """ePUAP's genuine signature over a Body changed after signing."""
    signed = nadaj_request(platform)
    assert b">pismo.xml<" in signed
    return signed.replace(b">pismo.xml<", b">pisma.xml<")


@pytest.mark.parametrize(
    "make_request",
    [
        pytest.param(
            lambda settings, platform: nadaj_request(platform, signed=False), id="unsigned"
        ),
        pytest.param(
            lambda settings, platform: office_signed_request(settings), id="office-signed"
        ),
        pytest.param(
            lambda settings, platform: broken_signature_request(platform), id="broken-signature"
        ),
    ],
)
def test_a_push_not_signed_by_epuap_gets_a_fault_is_quarantined_and_stores_nothing(
    client, esp_settings, store, platform, make_request
):
    response = client.post(
        ESP_PATH, data=make_request(esp_settings, platform), content_type="text/xml"
    )

    assert response.status_code == 500
    assert fault_code(response) == 13
    assert b"OdpowiedzSkrytki" not in response.data
    with store.session() as session:
        assert session.query(MessageRow).count() == 0
        assert session.query(ReceiptRow).count() == 0
    assert store.count_unsent_outbox() == 0
    [kept] = quarantined(store, channel="epuap-esp")
    assert kept.code == "wyjatek-13"
    assert "WS-Security" in kept.reason


def test_an_office_signed_push_is_refused_as_not_epuaps(client, esp_settings):
    response = client.post(
        ESP_PATH, data=office_signed_request(esp_settings), content_type="text/xml"
    )

    assert b"CN=146301_1" in response.data
    assert b"not by the expected" in response.data


@pytest.mark.parametrize("ws_security", ["", "ws_security = false\n"], ids=["absent", "false"])
def test_a_region_whose_esp_lacks_ws_security_does_not_start(
    settings, region_path, store, ws_security
):
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[inbound]]\nname = "esp-bez-podpisu"\nkind = "epuap-esp"\n'
            f'url = "/epuap/esp"\n{ws_security}'
        )

    with pytest.raises(ConfigurationError, match=r"esp-bez-podpisu.*ws_security = true"):
        create_app(settings, store)


def test_a_push_to_a_mailbox_no_office_has_is_refused(client, platform):
    request = nadaj_request(platform, mailbox="/nieznany/skrytka")
    response = client.post(ESP_PATH, data=request, content_type="text/xml")
    assert fault_code(response) == 11
    assert b"/nieznany/skrytka" in response.data


def test_a_malformed_document_is_refused_and_kept_as_rejected(client, store, platform):
    request = nadaj_request(platform, content=b"<wnio:Dokument>")
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
