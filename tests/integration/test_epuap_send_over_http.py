"""The ePUAP simulator's send side over real HTTP on loopback, with WS-Security both ways.

zeep clients carry the hub's own ``WsSecurity`` plugin: they sign every request as an
office and refuse any answer not signed by the simulator's certificate. Needs no
RabbitMQ or database: only a free loopback port.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree

from hub.errors import SignatureInvalid
from hub.signing.keystore import Keystore, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import WsSecurity
from hub.signing.xades import sign_document, verify_document
from simulators.epuap.documents import sha1_b64
from simulators.epuap.receipts import UPO_NS, upo_schema
from simulators.epuap.server import DORECZYCIEL_PATH, PULL_PATH, SKRYTKA_PATH, create_app
from simulators.serving import loopback_server

ROOT = Path(__file__).resolve().parents[2]
WSDL_DIR = ROOT / "wsdl" / "epuap"
SKRYTKA = "{http://ws.epuap.gov.pl/skrytka/}skrytkaBinding"
DORECZYCIEL = "{http://ws.epuap.gov.pl/doreczyciel/}doreczyciel"
PULL = "{http://ws.epuap.gov.pl/pull/}pull"
WARSZAWA = ("umwarszawa", "skrytka")  # the sending office (identity 146501_1)
PRUSZKOW = ("sppruszkow", "skrytka")  # the addressee office (identity 1421)
DECISION = b"<decyzja xmlns='urn:test:decyzja'><numer>WA.7/2024</numer></decyzja>"


def address(box: tuple[str, str]) -> str:
    return f"/{box[0]}/{box[1]}"


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> Keystore:
    directory = tmp_path_factory.mktemp("keys")
    init_keystore(directory, ["epuap", "146501_1", "1421"])
    return Keystore(directory)


@pytest.fixture(scope="module")
def base_url(keystore) -> Iterator[str]:
    app = create_app(
        trusted_ca_pems=[keystore.ca_certificate_pem()],
        identity=keystore.identity("epuap"),
        upd_delay_s=0.05,
    )
    server = loopback_server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def clean(base_url: str) -> None:
    requests.post(f"{base_url}/_sim/reset", timeout=5).raise_for_status()


def service(keystore: Keystore, base_url: str, wsdl: str, binding: str, path: str, office: str):
    """A zeep service that signs as ``office`` and trusts only the simulator's answers."""
    wsse = WsSecurity(
        keystore.identity(office),
        platform_certificate_pem=keystore.identity("epuap").certificate_pem,
    )
    client = zeep.Client(str(WSDL_DIR / wsdl), wsse=wsse)
    return client.create_service(binding, base_url + path)


@pytest.fixture
def skrytka(keystore, base_url):
    return service(keystore, base_url, "skrytka.wsdl", SKRYTKA, SKRYTKA_PATH, "146501_1")


@pytest.fixture
def doreczyciel(keystore, base_url):
    return service(
        keystore, base_url, "doreczyciel.wsdl", DORECZYCIEL, DORECZYCIEL_PATH, "146501_1"
    )


@pytest.fixture
def pull_as_pruszkow(keystore, base_url):
    return service(keystore, base_url, "pull.wsdl", PULL, PULL_PATH, "1421")


@pytest.fixture
def pull_as_warszawa(keystore, base_url):
    return service(keystore, base_url, "pull.wsdl", PULL, PULL_PATH, "146501_1")


@pytest.fixture(scope="module")
def trust(keystore) -> TrustStore:
    return TrustStore.from_pems([keystore.ca_certificate_pem()])


def headers(**extra) -> dict:
    return {
        "podmiot": WARSZAWA[0],
        "adresSkrytki": address(PRUSZKOW),
        "adresOdpowiedzi": address(WARSZAWA),
        "czyProbne": False,
        **extra,
    }


def box(owner: tuple[str, str]) -> dict:
    return {"podmiot": owner[0], "nazwaSkrytki": owner[1], "adresSkrytki": address(owner)}


def test_nadaj_then_the_addressee_pulls_the_document_back(
    skrytka, pull_as_pruszkow, trust, keystore
):
    answer = skrytka.nadaj(
        nazwaPliku="decyzja.xml",
        typPliku="text/xml",
        zawartosc=DECISION,
        _soapheaders=headers(),
    )
    assert answer.status.kod == 1
    upp = answer.zalacznik.zawartosc
    upo_schema().assertValid(etree.fromstring(upp))
    assert verify_document(upp, trust).signer == keystore.identity("epuap").subject

    assert pull_as_pruszkow.oczekujaceDokumenty(**box(PRUSZKOW)).oczekujace == 1
    pulled = pull_as_pruszkow.pobierzNastepny(**box(PRUSZKOW))
    assert pulled.dokument.zawartosc == DECISION
    assert pulled.adresOdpowiedzi == address(WARSZAWA)
    confirmed = pull_as_pruszkow.potwierdzOdebranie(**box(PRUSZKOW), skrot=sha1_b64(DECISION))
    assert confirmed.kod == 1
    assert pull_as_pruszkow.oczekujaceDokumenty(**box(PRUSZKOW)).oczekujace == 0


def test_a_signed_fault_reaches_the_client_as_a_fault(skrytka):
    with pytest.raises(zeep.exceptions.Fault) as raised:
        skrytka.nadaj(
            nazwaPliku="decyzja.xml",
            zawartosc=DECISION,
            _soapheaders=headers(adresSkrytki="sppruszkow"),
        )
    assert raised.value.code == "soap-env:Client"
    assert "adresSkrytki" in raised.value.message


def test_a_tampered_answer_is_refused_by_the_client(skrytka, base_url):
    armed = requests.post(
        f"{base_url}/_sim/faults",
        json={"operation": "nadaj", "kind": "bad_signature"},
        timeout=5,
    )
    assert armed.status_code == 201
    with pytest.raises(SignatureInvalid, match="does not match"):
        skrytka.nadaj(nazwaPliku="decyzja.xml", zawartosc=DECISION, _soapheaders=headers())


def test_an_unsigned_caller_is_refused(base_url):
    client = zeep.Client(str(WSDL_DIR / "skrytka.wsdl"))
    unsigned = client.create_service(SKRYTKA, base_url + SKRYTKA_PATH)
    with pytest.raises(zeep.exceptions.Fault) as raised:
        unsigned.nadaj(nazwaPliku="decyzja.xml", zawartosc=DECISION, _soapheaders=headers())
    assert raised.value.code == "wsse:InvalidSecurity"
    assert "no wsse:Security header" in raised.value.message


def test_dorecz_then_the_upd_arrives_in_the_senders_reply_skrytka(
    doreczyciel, pull_as_warszawa, trust, keystore
):
    signed = sign_document(DECISION, keystore.identity("146501_1"))
    answer = doreczyciel.dorecz(
        nazwaPliku="decyzja.xml",
        typPliku="text/xml",
        zawartosc=signed,
        _soapheaders=headers(identyfikatorSprawy="WA.7.2024"),
    )
    assert answer.status.kod == 1

    deadline = time.monotonic() + 10
    while pull_as_warszawa.oczekujaceDokumenty(**box(WARSZAWA)).oczekujace == 0:
        assert time.monotonic() < deadline, "the UPD never arrived"
        time.sleep(0.02)
    pulled = pull_as_warszawa.pobierzNastepny(**box(WARSZAWA))
    assert pulled.dokument.nazwaPliku == "UPD.xml"
    upd = pulled.dokument.zawartosc
    upo_schema().assertValid(etree.fromstring(upd))
    assert verify_document(upd, trust).signer == keystore.identity("epuap").subject
    document_id = etree.fromstring(upd).findtext(
        f"{{{UPO_NS}}}UPD/{{{UPO_NS}}}IdentyfikatorDokumentu"
    )
    assert document_id == answer.identyfikatorDokumentu


def test_module_entry_point_with_a_keystore_turns_ws_security_on(keystore):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.epuap",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--keystore",
            str(keystore.directory),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Never hang the suite on a child that neither prints nor exits.
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"epuap simulator listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"unexpected first line {line!r}"
        identity = requests.get(f"{match.group(1)}/_sim/identity", timeout=5).json()
        assert identity["wssecurity"] is True
        assert identity["certificate_pem"].encode() == keystore.identity("epuap").certificate_pem
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
