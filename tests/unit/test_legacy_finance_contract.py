"""The finance contract: the WSDL loads, and client and simulator read it the same way."""

from __future__ import annotations

import base64

import pytest
import zeep
from lxml import etree

from adapters.finance.outbound import FINANCE_BINDING, FINANCE_WSDL, fault_reason
from simulators.finance.server import SERVICE_PATH, create_app

FIN = "http://finanse.legacy.gov.pl/system-finansowy/v1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def request_envelope(**values):
    client = zeep.Client(str(FINANCE_WSDL))
    operation = client.wsdl.bindings[FINANCE_BINDING].get("ZarejestrujDokument")
    return etree.tostring(operation.input.serialize(**values).content)


def register(client, key="k-1", body=b"<a/>", kind="FAKTURA"):
    data = request_envelope(
        KluczIdempotencji=key,
        Urzad="146501_1",
        RodzajDokumentu=kind,
        IdentyfikatorSprawy="case-1",
        TypDokumentu="urn:x",
        TypTresci="application/xml",
        Tresc=body,
    )
    return client.post(SERVICE_PATH, data=data, content_type="text/xml")


@pytest.fixture
def client():
    return create_app(sleep=lambda _s: None).test_client()


def test_the_wsdl_offers_both_operations_as_document_literal():
    binding = zeep.Client(str(FINANCE_WSDL)).wsdl.bindings[FINANCE_BINDING]
    assert sorted(binding.all()) == ["StatusDokumentu", "ZarejestrujDokument"]
    assert binding.get("ZarejestrujDokument").style == "document"


def test_a_key_registers_once_and_a_repeat_answers_the_same_number(client):
    first, again = register(client), register(client)
    numbers = [
        etree.fromstring(r.data).findtext(f".//{{{FIN}}}NumerRejestracyjny") for r in (first, again)
    ]
    duplicates = [
        etree.fromstring(r.data).findtext(f".//{{{FIN}}}CzyDuplikat") for r in (first, again)
    ]
    assert numbers[0] == numbers[1]
    assert duplicates == ["false", "true"]
    assert client.get("/_sim/stats").json["registered"] == 1


def test_a_kind_outside_the_schema_is_a_client_fault_with_code_100(client):
    response = register(client, kind="ZUS")
    assert response.status_code == 500
    root = etree.fromstring(response.data)
    assert root.findtext(f".//{{{SOAP}}}Fault/faultcode") == "soap-env:Client"
    assert root.findtext(f".//{{{FIN}}}Kod") == "100"


def test_an_empty_document_is_a_client_fault_with_code_103(client):
    root = etree.fromstring(register(client, body=b"").data)
    assert root.findtext(f".//{{{FIN}}}Kod") == "103"


def test_not_xml_is_a_client_fault_and_not_a_crash(client):
    response = client.post(SERVICE_PATH, data=b"<<<", content_type="text/xml")
    assert response.status_code == 500
    assert b"faultcode>soap-env:Client<" in response.data


def test_a_fault_reason_names_the_systems_code():
    detail = etree.fromstring(
        f'<detail><f:BladSystemu xmlns:f="{FIN}"><f:Kod>102</f:Kod></f:BladSystemu></detail>'
    )
    fault = zeep.exceptions.Fault("odmowa", code="soap-env:Client", detail=detail)
    assert fault_reason(fault) == "soap-env:Client: odmowa (Kod 102)"


def test_the_content_travels_base64_encoded():
    data = request_envelope(
        KluczIdempotencji="k",
        Urzad="1",
        RodzajDokumentu="BUDZET",
        IdentyfikatorSprawy="c",
        TypDokumentu="t",
        TypTresci="application/xml",
        Tresc=b"<zmiana/>",
    )
    assert (
        etree.fromstring(data).findtext(f".//{{{FIN}}}Tresc")
        == base64.b64encode(b"<zmiana/>").decode()
    )
