"""The ePUAP simulator over real HTTP on loopback, driven by a real zeep client.

Needs no RabbitMQ or database: only a free loopback port.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import zeep
import zeep.exceptions
from lxml import etree
from werkzeug.serving import make_server
from zeep.plugins import Plugin

from simulators.epuap.server import PULL_PATH, create_app

ROOT = Path(__file__).resolve().parents[2]
WSDL = ROOT / "wsdl" / "epuap" / "pull.wsdl"
XSD = ROOT / "wsdl" / "epuap" / "obiektypk.xsd"
PULL = "{http://ws.epuap.gov.pl/pull/}pull"
OB = "http://wsdl.epuap.gov.pl/obiekty/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
RADOM = ("um-radom", "skrytka")
OFFICE = {"office_name": "Urząd Miejski w Radomiu", "office_teryt": "1463011"}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(wsdl_path=WSDL), threaded=True)
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


class Received(Plugin):
    """Keeps every envelope the zeep client receives (answers and Faults alike)."""

    def __init__(self) -> None:
        self.envelopes: list[etree._Element] = []

    def ingress(self, envelope, http_headers, operation):
        self.envelopes.append(envelope)
        return envelope, http_headers


@pytest.fixture
def history() -> Received:
    return Received()


@pytest.fixture
def pull(base_url: str, history: Received):
    client = zeep.Client(str(WSDL), plugins=[history])
    return client.create_service(PULL, base_url + PULL_PATH)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def box(podmiot: str = RADOM[0], nazwa: str = RADOM[1]) -> dict[str, str]:
    return {"podmiot": podmiot, "nazwaSkrytki": nazwa, "adresSkrytki": f"/{podmiot}/{nazwa}"}


def enqueue(base_url: str, count: int, address: str = "/um-radom/skrytka") -> list[dict]:
    response = requests.post(
        f"{base_url}/_sim/documents",
        json={"mailboxes": [{"address": address, **OFFICE, "count": count}], "seed": 3},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["documents"]


def arm(base_url: str, **fault) -> None:
    requests.post(f"{base_url}/_sim/faults", json=fault, timeout=5).raise_for_status()


def skrot(content: bytes) -> str:
    return base64.b64encode(hashlib.sha1(content).digest()).decode()


def assert_received_valid(history: Received, schema: etree.XMLSchema) -> int:
    """Validate every received payload against obiektypk.xsd; return how many were Faults."""
    assert history.envelopes, "nothing received"
    faults = 0
    for envelope in history.envelopes:
        payload = envelope.find(f"{{{SOAP}}}Body")[0]
        if payload.tag == f"{{{SOAP}}}Fault":
            faults += 1
            payload = payload.find(f"detail/{{{OB}}}Wyjatek")
        schema.assertValid(payload)
    return faults


def test_pull_confirm_loop_drains_the_mailbox_in_order(base_url, pull, history, schema):
    listed = enqueue(base_url, 5)
    received = []
    while pull.oczekujaceDokumenty(**box()).oczekujace:
        answer = pull.pobierzNastepny(**box())
        assert answer.status.kod == 1
        received.append(skrot(answer.dokument.zawartosc))
        assert pull.potwierdzOdebranie(**box(), skrot=received[-1]).kod == 1
    assert received == [d["sha1_b64"] for d in listed]

    with pytest.raises(zeep.exceptions.Fault) as caught:
        pull.pobierzNastepny(**box())
    assert caught.value.message == "Brak dokumentów do pobrania"
    assert caught.value.detail.find(f"{{{OB}}}Wyjatek").findtext("kod") == "0"
    assert len(history.envelopes) == 17  # 6 counts, 5 pulls, 5 confirms, 1 Fault
    assert assert_received_valid(history, schema) == 1

    stats = requests.get(f"{base_url}/_sim/stats", timeout=5).json()
    assert (stats["served"], stats["confirmed"], stats["pending"]) == (5, 5, 0)


def test_unconfirmed_document_is_served_again(base_url, pull):
    [doc] = enqueue(base_url, 1)
    first = pull.pobierzNastepny(**box())
    second = pull.pobierzNastepny(**box())
    assert skrot(first.dokument.zawartosc) == skrot(second.dokument.zawartosc) == doc["sha1_b64"]


def test_http500_reaches_zeep_as_transport_error(base_url, pull):
    enqueue(base_url, 1)
    arm(base_url, operation="pobierzNastepny", kind="http500", times=1)
    with pytest.raises(zeep.exceptions.TransportError) as caught:
        pull.pobierzNastepny(**box())
    assert caught.value.status_code == 500
    assert pull.pobierzNastepny(**box()).status.kod == 1


def test_injected_soap_fault_reaches_zeep_as_fault(base_url, pull, history, schema):
    arm(base_url, operation="oczekujaceDokumenty", kind="soap_fault", times=1)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        pull.oczekujaceDokumenty(**box())
    assert caught.value.code == "soap-env:Server"
    assert caught.value.detail.find(f"{{{OB}}}Wyjatek").findtext("kod") == "4"
    assert assert_received_valid(history, schema) == 1


def test_lost_confirmation_means_the_same_document_again(base_url, pull):
    [doc] = enqueue(base_url, 1)
    arm(base_url, operation="potwierdzOdebranie", kind="drop_confirm", times=1)
    content = pull.pobierzNastepny(**box()).dokument.zawartosc
    with pytest.raises(zeep.exceptions.TransportError):
        pull.potwierdzOdebranie(**box(), skrot=skrot(content))
    again = pull.pobierzNastepny(**box()).dokument.zawartosc
    assert skrot(again) == doc["sha1_b64"]
    assert pull.potwierdzOdebranie(**box(), skrot=skrot(again)).kod == 1
    assert pull.potwierdzOdebranie(**box(), skrot=skrot(again)).kod == 2


def test_delay_is_really_waited(base_url, pull):
    arm(base_url, operation="oczekujaceDokumenty", kind="delay", times=1, delay_s=0.4)
    started = time.monotonic()
    assert pull.oczekujaceDokumenty(**box()).oczekujace == 0
    assert time.monotonic() - started >= 0.4


def test_parallel_clients_on_separate_mailboxes(base_url, pull):
    addresses = [f"/um-{i}/skrytka" for i in range(4)]
    expected = {address: enqueue(base_url, 10, address) for address in addresses}

    def drain(address: str) -> list[str]:
        _, podmiot, nazwa = address.split("/")
        client = zeep.Client(str(WSDL)).create_service(PULL, base_url + PULL_PATH)
        got = []
        while client.oczekujaceDokumenty(**box(podmiot, nazwa)).oczekujace:
            content = client.pobierzNastepny(**box(podmiot, nazwa)).dokument.zawartosc
            got.append(skrot(content))
            client.potwierdzOdebranie(**box(podmiot, nazwa), skrot=got[-1])
        return got

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(addresses, pool.map(drain, addresses), strict=True))
    for address in addresses:
        assert results[address] == [d["sha1_b64"] for d in expected[address]]
    assert requests.get(f"{base_url}/_sim/stats", timeout=5).json()["confirmed"] == 40


def test_module_entry_point_prints_its_real_port():
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.epuap", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Never hang the suite on a child that neither prints nor exits.
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        line = process.stdout.readline()  # printed only once the socket listens
        match = re.fullmatch(r"epuap simulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, f"unexpected first line {line!r}"
        assert int(match.group(2)) > 0
        stats = requests.get(f"{match.group(1)}/_sim/stats", timeout=5)
        assert stats.json()["pending"] == 0
        process.terminate()
        assert process.wait(timeout=10) == 0  # SIGTERM is a clean shutdown
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
