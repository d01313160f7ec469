"""The ePUAP pull simulator through Flask's test client (no sockets).

Requests are built by a real zeep client from the same WSDL, answers are checked against
obiektypk.xsd and read back with the binding's output deserializer.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree

from simulators.epuap.mailboxes import MailboxStore, PendingDocument
from simulators.epuap.server import (
    PULL_PATH,
    STATUS_OK,
    STATUS_UNKNOWN_DOCUMENT,
    WYJATEK_BAD_REQUEST,
    WYJATEK_INJECTED,
    WYJATEK_NO_DOCUMENTS,
    create_app,
)

ROOT = Path(__file__).resolve().parents[2]
WSDL = ROOT / "wsdl" / "epuap" / "pull.wsdl"
XSD = ROOT / "wsdl" / "epuap" / "obiektypk.xsd"
PULL = "{http://ws.epuap.gov.pl/pull/}pull"
OB = "http://wsdl.epuap.gov.pl/obiekty/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
RADOM = "/um-radom/skrytka"
OFFICE = {"office_name": "Urząd Miejski w Radomiu", "office_teryt": "1463011"}


@pytest.fixture(scope="module")
def zeep_client() -> zeep.Client:
    return zeep.Client(str(WSDL))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


class Sleeps(list):
    """Records injected delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def app(sleeps):
    return create_app(wsdl_path=WSDL, sleep=sleeps)


@pytest.fixture
def http(app):
    return app.test_client()


class Epuap:
    """A tiny SOAP caller over the Flask test client; every answer is XSD-checked."""

    def __init__(self, http, client: zeep.Client, schema: etree.XMLSchema) -> None:
        self.http = http
        self.client = client
        self.schema = schema
        self.service = client.create_service(PULL, "http://epuap.invalid" + PULL_PATH)
        self.binding = client.wsdl.bindings[PULL]

    def envelope(self, operation: str, address: str = RADOM, **extra: Any) -> bytes:
        _, podmiot, nazwa = address.split("/")
        message = self.client.create_message(
            self.service,
            operation,
            podmiot=podmiot,
            nazwaSkrytki=nazwa,
            adresSkrytki=address,
            **extra,
        )
        return etree.tostring(message)

    def post(self, data: bytes, action: str | None):
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        if action is not None:
            headers["SOAPAction"] = action
        return self.http.post(PULL_PATH, data=data, headers=headers)

    def call(self, operation: str, address: str = RADOM, **extra: Any):
        """Send like zeep does (quoted SOAPAction); return the raw Flask response."""
        action = f'"http://ws.epuap.gov.pl/pull/{operation}"'
        return self.post(self.envelope(operation, address, **extra), action)

    def ok(self, operation: str, address: str = RADOM, **extra: Any):
        """Call, insist on HTTP 200 and a schema-valid answer, return zeep's reading of it."""
        response = self.call(operation, address, **extra)
        assert response.status_code == 200, response.data
        assert response.content_type == "text/xml; charset=utf-8"
        envelope = self.valid_body(response.data).getroottree().getroot()
        return self.binding.get(operation).output.deserialize(envelope)

    def valid_body(self, data: bytes) -> etree._Element:
        """Return the Body's payload (or the Fault's Wyjatek) after validating it."""
        envelope = etree.fromstring(data)
        assert envelope.tag == f"{{{SOAP}}}Envelope"
        payload = envelope.find(f"{{{SOAP}}}Body")[0]
        if payload.tag == f"{{{SOAP}}}Fault":
            payload = payload.find(f"detail/{{{OB}}}Wyjatek")
            assert payload is not None, "Fault without ob:Wyjatek detail"
        self.schema.assertValid(payload)
        return payload

    def fault(self, response) -> tuple[str, int, str]:
        """Return (faultcode, Wyjatek kod, Wyjatek komunikat) of a schema-valid Fault."""
        assert response.status_code == 500
        wyjatek = self.valid_body(response.data)
        fault = wyjatek.getparent().getparent()
        assert fault.tag == f"{{{SOAP}}}Fault"
        assert fault.findtext("faultstring") == wyjatek.findtext("komunikat")
        return (
            fault.findtext("faultcode"),
            int(wyjatek.findtext("kod")),
            wyjatek.findtext("komunikat"),
        )


@pytest.fixture
def epuap(http, zeep_client, schema) -> Epuap:
    return Epuap(http, zeep_client, schema)


def enqueue(http, count: int, address: str = RADOM, seed: int = 42, attachments: int = 1):
    response = http.post(
        "/_sim/documents",
        json={
            "mailboxes": [{"address": address, **OFFICE, "count": count}],
            "seed": seed,
            "attachments": attachments,
        },
    )
    assert response.status_code == 201, response.json
    return response.json["documents"]


def skrot(content: bytes) -> str:
    return base64.b64encode(hashlib.sha1(content).digest()).decode()


# ---------------------------------------------------------------- SOAP operations


def test_oczekujace_counts_per_mailbox(http, epuap):
    enqueue(http, 3)
    enqueue(http, 2, address="/um-kielce/skrytka")
    answer = epuap.ok("oczekujaceDokumenty")
    assert (answer.status.kod, answer.status.komunikat, answer.oczekujace) == (1, "OK", 3)
    assert epuap.ok("oczekujaceDokumenty", "/um-kielce/skrytka").oczekujace == 2
    assert epuap.ok("oczekujaceDokumenty", "/nikt/nigdy").oczekujace == 0


def test_pobierz_returns_the_head_with_full_envelope_data(http, epuap):
    listed = enqueue(http, 2)
    before = datetime.now(UTC)
    answer = epuap.ok("pobierzNastepny")

    assert answer.status.kod == STATUS_OK
    assert skrot(answer.dokument.zawartosc) == listed[0]["sha1_b64"]
    assert answer.dokument.nazwaPliku == "pismo-ogolne.xml"
    assert answer.dokument.typPliku == "text/xml"
    assert (answer.nazwaSkrytki, answer.adresSkrytki) == ("skrytka", RADOM)
    assert answer.czyTestowe is False
    # An empty daneDodatkowe element is sent; zeep reads an empty base64Binary as None.
    assert answer.daneDodatkowe is None
    assert answer.dataNadania.tzinfo is not None
    assert abs((answer.dataNadania - before).total_seconds()) < 60

    podmiot = answer.danePodmiotu
    assert podmiot.typOsoby == "F"
    assert podmiot.zgoda is True
    assert answer.daneNadawcy.uzytkownik == podmiot.identyfikator
    assert answer.adresOdpowiedzi == f"/{podmiot.identyfikator}/skrytka"
    # The envelope data describes the citizen who wrote the document.
    document = etree.fromstring(answer.dokument.zawartosc)
    ns = {"oso": "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"}
    assert document.xpath("string(.//oso:PESEL)", namespaces=ns) == podmiot.pesel
    assert document.xpath("string(.//oso:Imie)", namespaces=ns) == podmiot.imieSkrot
    assert document.xpath("string(.//oso:Nazwisko)", namespaces=ns) == podmiot.nazwiskoNazwa


def test_pobierz_without_confirm_returns_the_same_document(http, epuap):
    enqueue(http, 3)
    first = epuap.ok("pobierzNastepny")
    second = epuap.ok("pobierzNastepny")
    assert first.dokument.zawartosc == second.dokument.zawartosc
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 3


def test_confirm_removes_exactly_that_document_even_from_the_middle(http, epuap):
    listed = enqueue(http, 3)
    middle = listed[1]["sha1_b64"]

    answer = epuap.ok("potwierdzOdebranie", skrot=middle)
    assert answer.kod == STATUS_OK  # single-field output: zeep unwraps the status

    assert epuap.ok("oczekujaceDokumenty").oczekujace == 2
    seen = []
    while epuap.ok("oczekujaceDokumenty").oczekujace:
        content = epuap.ok("pobierzNastepny").dokument.zawartosc
        seen.append(skrot(content))
        assert epuap.ok("potwierdzOdebranie", skrot=skrot(content)).kod == STATUS_OK
    assert seen == [listed[0]["sha1_b64"], listed[2]["sha1_b64"]]


def test_confirm_only_touches_the_named_mailbox(http, epuap):
    [doc] = enqueue(http, 1)
    answer = epuap.ok("potwierdzOdebranie", "/um-kielce/skrytka", skrot=doc["sha1_b64"])
    assert answer.kod == STATUS_UNKNOWN_DOCUMENT
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 1


def test_duplicate_or_unknown_confirmation_is_a_status_not_a_fault(http, epuap):
    [doc] = enqueue(http, 1)
    assert epuap.ok("potwierdzOdebranie", skrot=doc["sha1_b64"]).kod == STATUS_OK
    again = epuap.ok("potwierdzOdebranie", skrot=doc["sha1_b64"])
    assert again.kod == STATUS_UNKNOWN_DOCUMENT
    assert "Brak dokumentu" in again.komunikat
    stats = http.get("/_sim/stats").json
    assert (stats["confirmed"], stats["confirm_unknown"]) == (1, 1)


def test_empty_mailbox_faults_with_wyjatek(epuap):
    code, kod, komunikat = epuap.fault(epuap.call("pobierzNastepny"))
    assert code == "soap-env:Server"
    assert kod == WYJATEK_NO_DOCUMENTS
    assert komunikat == "Brak dokumentów do pobrania"


@pytest.mark.parametrize(
    "action",
    [
        '"http://ws.epuap.gov.pl/pull/oczekujaceDokumenty"',
        "http://ws.epuap.gov.pl/pull/oczekujaceDokumenty",
        None,  # no SOAPAction: the Body's element names the operation
        '""',
        '"http://ws.epuap.gov.pl/pull/nieMaTakiej"',  # unknown action: Body decides
    ],
)
def test_operation_found_from_action_or_body(http, epuap, action):
    enqueue(http, 2)
    response = epuap.post(epuap.envelope("oczekujaceDokumenty"), action)
    assert response.status_code == 200
    assert epuap.valid_body(response.data).findtext("oczekujace") == "2"


def test_action_and_body_disagreeing_is_a_client_fault(epuap):
    body = epuap.envelope("oczekujaceDokumenty")
    response = epuap.post(body, '"http://ws.epuap.gov.pl/pull/pobierzNastepny"')
    code, kod, message = epuap.fault(response)
    assert (code, kod) == ("soap-env:Client", WYJATEK_BAD_REQUEST)
    assert "ZapytaniePullOczekujace" in message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"<soap:Envelope", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"<a/>", "not a SOAP 1.1 Envelope"),
        (
            f'<e:Envelope xmlns:e="{SOAP}"><e:Body><x:Foo xmlns:x="urn:x"/></e:Body>'
            "</e:Envelope>".encode(),
            "Unknown operation",
        ),
        (f'<e:Envelope xmlns:e="{SOAP}"><e:Body/></e:Envelope>'.encode(), "Body is empty"),
        (f'<e:Envelope xmlns:e="{SOAP}"/>'.encode(), "no Body"),
    ],
)
def test_bad_requests_are_client_faults(epuap, data, fragment):
    code, kod, message = epuap.fault(epuap.post(data, None))
    assert (code, kod) == ("soap-env:Client", WYJATEK_BAD_REQUEST)
    assert fragment in message


def test_soap12_envelope_is_a_version_mismatch(epuap):
    data = b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>'
    code, _, _ = epuap.fault(epuap.post(data, None))
    assert code == "soap-env:VersionMismatch"


def test_dtd_and_external_entities_are_refused(epuap):
    body = epuap.envelope("oczekujaceDokumenty").decode().replace("um-radom", "&xxe;", 1)
    data = (
        '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + body
    ).encode()
    response = epuap.post(data, None)
    code, _, message = epuap.fault(response)
    assert code == "soap-env:Client"
    assert "DTD" in message
    assert b"root:" not in response.data


def test_request_not_matching_the_schema_is_a_client_fault(epuap):
    body = epuap.envelope("potwierdzOdebranie", skrot="x").replace(b"<skrot>x</skrot>", b"")
    code, kod, message = epuap.fault(epuap.post(body, None))
    assert (code, kod) == ("soap-env:Client", WYJATEK_BAD_REQUEST)
    assert "obiektypk.xsd" in message


def test_address_must_be_podmiot_and_skrytka(http, epuap):
    enqueue(http, 1)
    message = epuap.client.create_message(
        epuap.service,
        "oczekujaceDokumenty",
        podmiot="um-radom",
        nazwaSkrytki="skrytka",
        adresSkrytki="/um-kielce/skrytka",
    )
    code, kod, text = epuap.fault(epuap.post(etree.tostring(message), None))
    assert (code, kod) == ("soap-env:Client", WYJATEK_BAD_REQUEST)
    assert "/um-kielce/skrytka" in text


# ---------------------------------------------------------------- fault injection


def arm(http, **fault):
    response = http.post("/_sim/faults", json=fault)
    assert response.status_code == 201, response.json
    return response.json["armed"]


def test_http500_fault_fires_the_given_number_of_times(http, epuap):
    enqueue(http, 1)
    arm(http, operation="pobierzNastepny", kind="http500", times=2)
    for _ in range(2):
        response = epuap.call("pobierzNastepny")
        assert response.status_code == 500
        assert response.content_type.startswith("text/plain")
    assert epuap.ok("pobierzNastepny").status.kod == STATUS_OK
    # Other operations were never affected.
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 1


def test_soap_fault_injection(http, epuap):
    enqueue(http, 1)
    arm(http, operation="oczekujaceDokumenty", kind="soap_fault", times=1)
    code, kod, _ = epuap.fault(epuap.call("oczekujaceDokumenty"))
    assert (code, kod) == ("soap-env:Server", WYJATEK_INJECTED)
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 1


def test_delay_injection_waits_then_answers(http, epuap, sleeps):
    enqueue(http, 1)
    arm(http, operation="pobierzNastepny", kind="delay", times=2, delay_s=2.5)
    assert epuap.ok("pobierzNastepny").status.kod == STATUS_OK
    assert epuap.ok("pobierzNastepny").status.kod == STATUS_OK
    epuap.ok("pobierzNastepny")
    assert sleeps == [2.5, 2.5]


def test_drop_confirm_keeps_the_document(http, epuap):
    [doc] = enqueue(http, 1)
    arm(http, operation="potwierdzOdebranie", kind="drop_confirm", times=1)
    lost = epuap.call("potwierdzOdebranie", skrot=doc["sha1_b64"])
    assert lost.status_code == 500
    again = epuap.ok("pobierzNastepny")
    assert skrot(again.dokument.zawartosc) == doc["sha1_b64"]
    assert epuap.ok("potwierdzOdebranie", skrot=doc["sha1_b64"]).kod == STATUS_OK
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 0


def test_faults_fire_in_arming_order_and_can_be_cleared(http, epuap):
    enqueue(http, 1)
    arm(http, operation="pobierzNastepny", kind="http500", times=1)
    armed = arm(http, operation="pobierzNastepny", kind="soap_fault", times=3)
    assert [f["kind"] for f in armed["pobierzNastepny"]] == ["http500", "soap_fault"]
    assert epuap.call("pobierzNastepny").content_type.startswith("text/plain")
    assert epuap.fault(epuap.call("pobierzNastepny"))[1] == WYJATEK_INJECTED
    assert http.get("/_sim/faults").json["armed"]["pobierzNastepny"][0]["times"] == 2
    assert http.delete("/_sim/faults").status_code == 200
    assert http.get("/_sim/faults").json["armed"] == {}
    assert epuap.ok("pobierzNastepny").status.kod == STATUS_OK


@pytest.mark.parametrize(
    "fault",
    [
        {"operation": "usunWszystko", "kind": "http500"},
        {"operation": "pobierzNastepny", "kind": "fire"},
        {"operation": "pobierzNastepny", "kind": "drop_confirm"},
        {"operation": "pobierzNastepny", "kind": "http500", "times": 0},
        {"operation": "pobierzNastepny", "kind": "delay", "delay_s": -1},
        {"operation": "pobierzNastepny", "kind": "delay", "delay_s": "2"},
    ],
)
def test_bad_fault_requests_are_rejected(http, fault):
    response = http.post("/_sim/faults", json=fault)
    assert response.status_code == 400
    assert response.json["error"]


# ---------------------------------------------------------------- admin API


def test_documents_endpoint_reports_what_it_enqueued(http):
    response = http.post(
        "/_sim/documents",
        json={
            "mailboxes": [
                {"address": RADOM, **OFFICE, "count": 3},
                {
                    "address": "/um-kielce/skrytka",
                    "office_name": "Urząd Miasta Kielce",
                    "office_teryt": "2661011",
                    "count": 2,
                },
            ],
            "seed": 1,
        },
    )
    assert response.status_code == 201
    assert response.json["enqueued"] == 5
    documents = response.json["documents"]
    assert [d["address"] for d in documents] == [RADOM] * 3 + ["/um-kielce/skrytka"] * 2
    assert all(d["title"] and len(base64.b64decode(d["sha1_b64"])) == 20 for d in documents)
    stats = http.get("/_sim/stats").json
    assert stats["pending"] == 5
    assert stats["pending_by_mailbox"] == {RADOM: 3, "/um-kielce/skrytka": 2}


def test_same_seed_enqueues_the_same_documents(app):
    first = enqueue(app.test_client(), 4, seed=9)
    second = enqueue(app.test_client(), 4, seed=9)
    assert first == second


def test_enqueuing_thousands_is_fast(http, epuap):
    started = time.perf_counter()
    enqueue(http, 3000, attachments=1)
    assert time.perf_counter() - started < 6.0
    assert epuap.ok("oczekujaceDokumenty").oczekujace == 3000


@pytest.mark.parametrize(
    "mailbox",
    [
        {"address": "um-radom/skrytka", **OFFICE, "count": 1},
        {"address": "/um-radom/skrytka/extra", **OFFICE, "count": 1},
        {"address": RADOM, "office_name": "", "office_teryt": "1463011", "count": 1},
        {"address": RADOM, "office_name": "UM", "office_teryt": "14630", "count": 1},
        {"address": RADOM, **OFFICE, "count": -1},
        {"address": RADOM, **OFFICE, "count": True},
    ],
)
def test_bad_document_requests_are_rejected_and_enqueue_nothing(http, mailbox):
    payload = {"mailboxes": [{"address": RADOM, **OFFICE, "count": 2}, mailbox]}
    response = http.post("/_sim/documents", json=payload)
    assert response.status_code == 400
    assert response.json["error"]
    assert http.get("/_sim/stats").json["pending"] == 0


def test_raw_documents_are_served_byte_for_byte(http, epuap):
    raw = b"<pismo><niedomkniete>"
    response = http.post(f"/_sim/mailboxes{RADOM}/raw?filename=zepsute.xml", data=raw)
    assert response.status_code == 201
    assert response.json == {"enqueued": 1, "sha1_b64": skrot(raw)}
    answer = epuap.ok("pobierzNastepny")
    assert answer.dokument.zawartosc == raw
    assert answer.dokument.nazwaPliku == "zepsute.xml"
    assert epuap.ok("potwierdzOdebranie", skrot=skrot(raw)).kod == STATUS_OK


def test_raw_document_to_a_bad_address_is_rejected(http):
    assert http.post("/_sim/mailboxes/only-one-part/raw", data=b"x").status_code == 400


def test_stats_count_requests_served_and_confirmed(http, epuap):
    [doc] = enqueue(http, 1)
    epuap.ok("oczekujaceDokumenty")
    epuap.ok("pobierzNastepny")
    epuap.ok("pobierzNastepny")
    epuap.ok("potwierdzOdebranie", skrot=doc["sha1_b64"])
    epuap.call("pobierzNastepny")  # empty now: a Fault, not a served document
    epuap.post(b"not xml", None)
    stats = http.get("/_sim/stats").json
    assert stats == {
        "pending": 0,
        "pending_by_mailbox": {},
        "served": 2,
        "confirmed": 1,
        "confirm_unknown": 0,
        "requests": {
            "oczekujaceDokumenty": 1,
            "pobierzNastepny": 3,
            "potwierdzOdebranie": 1,
            "_invalid": 1,
        },
    }


def test_reset_empties_everything(http, epuap):
    enqueue(http, 2)
    arm(http, operation="pobierzNastepny", kind="http500", times=5)
    epuap.call("oczekujaceDokumenty")
    assert http.post("/_sim/reset").status_code == 200
    stats = http.get("/_sim/stats").json
    assert (stats["pending"], stats["requests"], stats["served"]) == (0, {}, 0)
    assert http.get("/_sim/faults").json["armed"] == {}


# ---------------------------------------------------------------- the state itself


def _pending(index: int) -> PendingDocument:
    content = f"<d>{index}</d>".encode()
    return PendingDocument(
        address=RADOM,
        content=content,
        sha1_b64=skrot(content),
        enqueued_at=datetime.now(UTC),
        filename="d.xml",
        content_type="text/xml",
        title=str(index),
        sender_login="jkowalski11",
        sender_first_name="Jan",
        sender_last_name="Kowalski",
        sender_pesel="44051401359",
    )


def test_concurrent_confirmations_remove_each_document_once():
    store = MailboxStore()
    documents = [_pending(i) for i in range(2_000)]
    store.enqueue(documents)
    removed: list[PendingDocument] = []
    lock = threading.Lock()

    def worker() -> None:
        # Every worker tries every document; only one may win each.
        for document in documents:
            if store.confirm(RADOM, document.sha1_b64) is not None:
                with lock:
                    removed.append(document)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(d.title for d in removed) == sorted(d.title for d in documents)
    assert store.count(RADOM) == 0
