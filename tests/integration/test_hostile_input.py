"""Hostile and broken input on every inbound endpoint: a specific answer, a record, no outage.

Each case posts one bad request to the hub's real Flask app (the ePUAP ESP over SOAP,
the domain intake and the e-Doręczenia webhook over REST) against the real store, and
checks three things: the caller gets a code it can act on, the input is kept (as a
rejected message when the document could be read, otherwise in the quarantine) with
its reason, and a good request right after it is still served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import zeep
from lxml import etree

from adapters.eod.inbound import INTAKE_PATH
from adapters.epuap.contract import SKRYTKA_BINDING, SKRYTKA_WSDL
from adapters.epuap.esp import ESP_PATH
from hub.identity import ClientRegistry
from hub.signing.keystore import Keystore, init_test_pki
from hub.signing.wssecurity import sign_envelope, signing_key
from hub.store.models import MessageRow
from hub.store.quarantine import quarantined
from hub.web import MAX_REQUEST_BYTES, create_app

PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
PISMO = f'<w:Dokument xmlns:w="{PISMO_OGOLNE}"><w:Tresc>Wniosek</w:Tresc></w:Dokument>'.encode()
TOKEN = "intake-token"
WEBHOOK_SECRET = "webhook-secret"
EDORECZENIA_ADDRESS = "AE:PL-14650-11001-HUBDM-02"
OBIEKTY = "http://wsdl.epuap.gov.pl/obiekty/"

ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<lol>&c;</lol>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    b"<d>&secret;</d>"
)
# Deeper than the hub's limit (200), shallower than libxml2's own (256).
DEEP = b"<a>" * 220 + b"</a>" * 220
INVALID_UTF8 = b'<?xml version="1.0" encoding="UTF-8"?><w:D xmlns:w="urn:x">\xff\xfe\xfa</w:D>'
TRUNCATED = b"<w:Dokument xmlns:w="


@pytest.fixture
def region_path(region_path):
    with region_path.open("a", encoding="utf-8") as region:
        region.write(
            '\n[[inbound]]\nname = "esp"\nkind = "epuap-esp"\nurl = "/epuap/esp"\n'
            "ws_security = true\n"
            '\n[[inbound]]\nname = "edoreczenia"\nkind = "edoreczenia-poll"\n'
            'url = "http://127.0.0.1:9/api/v1"\ntoken_url = "http://127.0.0.1:9/oauth2/token"\n'
            'client_id = "hub"\nclient_secret = "s"\nwebhook = true\n'
        )
    text = region_path.read_text(encoding="utf-8")
    # Give Warsaw an e-Doręczenia address, so its webhook exists.
    text = text.replace(
        'esp = "/umwarszawa/skrytka"\n',
        f'esp = "/umwarszawa/skrytka"\nedoreczenia = "{EDORECZENIA_ADDRESS}"\n',
    )
    region_path.write_text(text, encoding="utf-8")
    return region_path


@pytest.fixture
def hostile_settings(settings):
    # The ESP takes pushes signed by ePUAP's pinned certificate only (trust/platforms/);
    # the e-Doręczenia webhook keeps evidences signed by the provider's pinned one only.
    init_test_pki(
        settings.keys,
        settings.trust,
        ["146501_1", "1421", "epuap", "edoreczenia"],
        platforms_dir=settings.var_dir / "platforms",
    )
    return settings


@pytest.fixture
def client(hostile_settings, store):
    registry = ClientRegistry(store)
    registry.add("portal-forms-146501_1", "146501_1", sources=["epuap-portal"], token=TOKEN)
    registry.add("edoreczenia", "region", apis=["edoreczenia-webhook"], token=WEBHOOK_SECRET)
    return create_app(hostile_settings, store).test_client()


def nadaj(settings, content=PISMO, mailbox="/umwarszawa/skrytka", signed=True, tamper=False):
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
        platform = Keystore(settings.var_dir / "platforms").identity("epuap")
        sign_envelope(envelope, signing_key(platform))
    body = etree.tostring(envelope)
    # The signature covers the Body (the document and its name) and the Timestamp.
    return body.replace(b">pismo.xml<", b">wniosek.xml<") if tamper else body


@dataclass(frozen=True)
class Case:
    """One bad request: how to make it, what the caller must get, where it is kept."""

    name: str
    send: Callable  # (client, settings) -> response
    answer: str  # the HTTP problem code, or "wyjatek-<kod>" for a SOAP fault
    kept: str  # "quarantine" or "rejected-message"
    reason: str  # a phrase of the recorded reason


def esp(body_of, content_type="text/xml"):
    def send(client, settings):
        body = body_of(settings) if callable(body_of) else body_of
        return client.post(ESP_PATH, data=body, content_type=content_type)

    return send


def intake(body, content_type="application/xml", **header_changes):
    def send(client, _settings):
        headers = {
            "Authorization": f"Bearer {TOKEN}",
            "X-Hub-Source": "epuap-portal",
            "X-Hub-Office": "146501_1",
            "Idempotency-Key": f"k-{abs(hash((body[:64], content_type, str(header_changes))))}",
        }
        headers.update(header_changes)
        headers = {name: value for name, value in headers.items() if value is not None}
        return client.post(INTAKE_PATH, data=body, content_type=content_type, headers=headers)

    return send


def webhook(body, office="146501_1", secret=WEBHOOK_SECRET, content_type="application/json"):
    def send(client, _settings):
        url = f"/edoreczenia/notifications/{office}?token={secret}"
        return client.post(url, data=body, content_type=content_type)

    return send


CASES = [
    # The ePUAP ESP (SOAP): faults carry a Wyjatek code.
    Case("esp-malformed-xml", esp(TRUNCATED), "wyjatek-10", "quarantine", "not well-formed"),
    Case(
        "esp-wrong-namespace",
        esp(b'<Envelope xmlns="urn:not-soap"><Body/></Envelope>'),
        "wyjatek-10",
        "quarantine",
        "not a SOAP 1.1 Envelope",
    ),
    Case("esp-entity-expansion", esp(ENTITY_BOMB), "wyjatek-10", "quarantine", "DOCTYPE"),
    Case("esp-external-entity", esp(EXTERNAL_ENTITY), "wyjatek-10", "quarantine", "DOCTYPE"),
    Case(
        "esp-huge",
        esp(b"<a>" + b"x" * (21 * 1024 * 1024) + b"</a>"),
        "wyjatek-10",
        "quarantine",
        "exceeds the limit",
    ),
    Case("esp-deep-nesting", esp(DEEP), "wyjatek-10", "quarantine", "nests deeper"),
    Case("esp-invalid-utf8", esp(INVALID_UTF8), "wyjatek-10", "quarantine", "not well-formed"),
    Case(
        "esp-missing-fields",
        esp(
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<s:Body/></s:Envelope>"
        ),
        "wyjatek-13",
        "quarantine",
        "WS-Security",
    ),
    Case(
        "esp-unknown-addressee",
        esp(lambda settings: nadaj(settings, mailbox="/nieznany/skrytka")),
        "wyjatek-11",
        "quarantine",
        "no office has the mailbox",
    ),
    Case(
        "esp-missing-signature",
        esp(lambda settings: nadaj(settings, signed=False)),
        "wyjatek-13",
        "quarantine",
        "WS-Security",
    ),
    Case(
        "esp-bad-signature",
        esp(lambda settings: nadaj(settings, tamper=True)),
        "wyjatek-13",
        "quarantine",
        "WS-Security",
    ),
    Case(
        "esp-content-type-mismatch",
        esp(nadaj, content_type="application/json"),
        "wyjatek-10",
        "quarantine",
        "declares 'application/json'",
    ),
    Case(
        "esp-document-not-xml",
        esp(lambda settings: nadaj(settings, content=b'{"wniosek": "json"}')),
        "wyjatek-12",
        "rejected-message",
        "not well-formed",
    ),
    # The domain intake (REST): RFC 7807 problems.
    Case(
        "intake-malformed-xml",
        intake(TRUNCATED),
        "malformed-document",
        "rejected-message",
        "not well-formed",
    ),
    Case(
        "intake-wrong-namespace",
        intake(b'<x:Pismo xmlns:x="urn:nobody-handles-this"/>'),
        "unroutable",
        "rejected-message",
        "no route takes 'urn:nobody-handles-this'",
    ),
    Case(
        "intake-entity-expansion",
        intake(ENTITY_BOMB),
        "malformed-document",
        "rejected-message",
        "DOCTYPE",
    ),
    Case(
        "intake-external-entity",
        intake(EXTERNAL_ENTITY),
        "malformed-document",
        "rejected-message",
        "DOCTYPE",
    ),
    Case(
        "intake-huge",
        intake(b"<a>" + b"x" * (MAX_REQUEST_BYTES + 1) + b"</a>"),
        "too-large",
        "quarantine",
        "larger than",
    ),
    Case(
        "intake-deep-nesting",
        intake(DEEP),
        "malformed-document",
        "rejected-message",
        "nests deeper",
    ),
    Case(
        "intake-invalid-utf8",
        intake(INVALID_UTF8),
        "malformed-document",
        "rejected-message",
        "not well-formed",
    ),
    Case(
        "intake-missing-fields",
        intake(PISMO, **{"Idempotency-Key": None}),
        "missing-header",
        "quarantine",
        "Idempotency-Key",
    ),
    Case(
        "intake-unknown-addressee",
        intake(PISMO, **{"X-Hub-Office": "999999_9"}),
        "wrong-office",
        "quarantine",
        "999999_9",
    ),
    Case(
        "intake-missing-credentials",
        intake(PISMO, Authorization=None),
        "unauthorized",
        "quarantine",
        "bearer token",
    ),
    Case(
        "intake-unsupported-media-type",
        intake(PISMO, content_type="text/plain"),
        "unsupported-media-type",
        "quarantine",
        "text/plain",
    ),
    Case(
        "intake-content-type-mismatch",
        intake(
            PISMO,
            content_type="application/json",
            **{"X-Hub-Document-Type": "urn:hub:legacy:podatki:decyzja:1"},
        ),
        "malformed-document",
        "rejected-message",
        "not JSON",
    ),
    Case(
        "intake-json-without-its-type",
        intake(b'{"decision": 1}', content_type="application/json"),
        "missing-header",
        "quarantine",
        "X-Hub-Document-Type",
    ),
    # The e-Doręczenia webhook (REST).
    Case(
        "webhook-malformed-json",
        webhook(b'{"eDeliveryAddress": '),
        "malformed-notification",
        "quarantine",
        "not a JSON object",
    ),
    Case(
        "webhook-missing-fields",
        webhook(b'{"notification": []}'),
        "malformed-notification",
        "quarantine",
        "required strings",
    ),
    Case(
        "webhook-unknown-addressee",
        webhook(b"{}", office="999999_9"),
        "unknown-office",
        "quarantine",
        "999999_9",
    ),
    Case(
        "webhook-bad-secret",
        webhook(b"{}", secret="guess"),
        "unauthorized",
        "quarantine",
        "'token' is required",
    ),
    Case(
        "webhook-content-type-mismatch",
        webhook(
            f'{{"eDeliveryAddress": "{EDORECZENIA_ADDRESS}", "notificationType": "x"}}'.encode(),
            content_type="text/plain",
        ),
        "malformed-notification",
        "quarantine",
        "not a JSON object",
    ),
]


def answered_code(response):
    if response.mimetype == "application/problem+json":
        return response.json["type"].removeprefix("urn:hub:problem:")
    root = etree.fromstring(response.data)
    return f"wyjatek-{root.findtext(f'.//{{{OBIEKTY}}}Wyjatek/kod')}"


def recorded_reason(case, store):
    if case.kept == "quarantine":
        [kept] = quarantined(store)
        assert kept.code == case.answer
        return kept.reason
    with store.session() as session:
        [message] = session.query(MessageRow).all()
    assert message.status == "rejected"
    return message.status_reason


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_gets_a_specific_answer_is_kept_with_its_reason_and_service_goes_on(
    client, hostile_settings, store, case
):
    response = case.send(client, hostile_settings)

    assert 400 <= response.status_code < 600
    assert answered_code(response) == case.answer
    assert case.reason in recorded_reason(case, store)
    good = client.post(ESP_PATH, data=nadaj(hostile_settings), content_type="text/xml")
    assert good.status_code == 200, good.data
