"""Two offices' systems on one hub: each may act for its own office only.

Radom's EOD (146301_1) tries, through real HTTP against ``hub serve`` (gunicorn), every
act for Warsaw (146501_1) that a shared token once allowed: claiming Warsaw's office or
a source it lacks, sending the hub's own envelope headers, writing into, forwarding,
reading and closing Warsaw's case, reusing Warsaw's idempotency key. Each is refused
with its specific problem type, and the store is unchanged; the legitimate calls pass.
The clients are made with ``hub client add`` as an operator would, whose token is the
last line it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import zeep
from conftest import fresh_database
from lxml import etree
from office_traffic import dead_letter
from sqlalchemy import func, select

from adapters.eod.inbound import INTAKE_PATH
from adapters.epuap.contract import SKRYTKA_BINDING, SKRYTKA_WSDL
from hub.envelope import Address, Envelope
from hub.signing.keystore import Keystore, SigningIdentity
from hub.signing.wssecurity import sign_envelope, signing_key
from hub.store.repository import Store
from hub.store.tables import (
    AUDIT,
    CASE_EVENTS,
    CASES,
    DELIVERIES,
    ENDPOINT_STATES,
    MESSAGES,
    QUARANTINE,
    RECEIPTS,
)
from simulators.serving import free_port

WARSZAWA, RADOM, PLOCK = "146501_1", "146301_1", "146201_1"
PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
DECISION_TYPE = "urn:hub:eod:decyzja:1"
PISMO = f'<w:Pismo xmlns:w="{PISMO_OGOLNE}"><w:T>Wniosek</w:T></w:Pismo>'.encode()
CITIZEN = "/jan-kowalski/skrytka"


def decision(text: str = "Decyzja") -> bytes:
    return f'<d:Decyzja xmlns:d="{DECISION_TYPE}"><d:T>{text}</d:T></d:Decyzja>'.encode()


@dataclass
class ServedHub:
    """``hub serve`` in a child process, the clients it knows, and its store.

    One serves every test of a database (starting it costs seconds); each test opens the
    cases it needs and uses its own idempotency keys.
    """

    url: str
    store: Store
    tokens: dict[str, str]
    env: dict[str, str]

    def warsaw_case(self) -> str:
        """A new case of Warsaw's: a citizen's letter that came in through ePUAP."""
        filing = Envelope(
            document_type=PISMO_OGOLNE,
            source="epuap",
            destination=Address(WARSZAWA),
            body=PISMO,
            headers={"epuap-reply-to": CITIZEN},
        )
        self.store.accept(filing)
        return filing.correlation_id

    def post(
        self, caller: str, body: bytes = b"", key: str = "", **headers: str
    ) -> requests.Response:
        key = key or uuid.uuid4().hex
        values = {"Authorization": f"Bearer {self.tokens[caller]}", "Idempotency-Key": key}
        values.update(headers)
        values.setdefault("Content-Type", "application/xml")
        return requests.post(
            f"{self.url}{INTAKE_PATH}", data=body or decision(), headers=values, timeout=10
        )

    def case(self, caller: str, case_id: str, **headers: str) -> requests.Response:
        values = {"Authorization": f"Bearer {self.tokens[caller]}", **headers}
        return requests.get(f"{self.url}/api/cases/{case_id}", headers=values, timeout=10)

    def report(self, caller: str, case_id: str, status: str) -> requests.Response:
        return requests.post(
            f"{self.url}/api/cases/{case_id}/status",
            json={"status": status},
            headers={"Authorization": f"Bearer {self.tokens[caller]}"},
            timeout=10,
        )

    def monitoring(self, caller: str, method: str, path: str, **json: str) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/api{path}",
            json=json or None,
            headers={"Authorization": f"Bearer {self.tokens[caller]}"},
            timeout=10,
        )

    def push(self, signer: str | None, content: bytes = PISMO) -> requests.Response:
        """A filing pushed to the ESP, WS-Security signed by ``signer``'s key (or not)."""
        envelope = nadaj_envelope(content)
        if signer is not None:
            sign_envelope(envelope, signing_key(self._identity(signer)))
        return requests.post(
            f"{self.url}/epuap/esp",
            data=etree.tostring(envelope),
            headers={"Content-Type": "text/xml"},
            timeout=10,
        )

    def _identity(self, signer: str) -> SigningIdentity:
        folder = Path(self.env["HUB_VAR_DIR"])
        keystore = folder / ("platforms" if signer == "epuap" else "keys")
        return Keystore(keystore).identity(signer)

    def snapshot(self) -> dict[str, object]:
        """What a refused act must not change: messages, cases, their history."""
        with self.store.reading() as connection:
            return {
                "messages": connection.scalar(select(func.count()).select_from(MESSAGES)),
                "cases": sorted(
                    connection.execute(select(CASES.c.id, CASES.c.office, CASES.c.status)).all()
                ),
                "events": connection.scalar(select(func.count()).select_from(CASE_EVENTS)),
                "receipts": connection.scalar(select(func.count()).select_from(RECEIPTS)),
                "circuits": sorted(
                    connection.execute(
                        select(ENDPOINT_STATES.c.endpoint, ENDPOINT_STATES.c.state)
                    ).all()
                ),
                "deliveries": sorted(
                    connection.execute(select(DELIVERIES.c.id, DELIVERIES.c.status)).all()
                ),
            }

    def last_quarantined(self) -> str | None:
        with self.store.reading() as connection:
            return connection.scalar(select(QUARANTINE.c.code).order_by(QUARANTINE.c.id.desc()))


def nadaj_envelope(content: bytes) -> etree._Element:
    """ePUAP's push of a citizen's filing to Warsaw's ESP, as WS-Skrytka ``nadaj``."""
    soap = zeep.Client(str(SKRYTKA_WSDL))
    service = soap.create_service(SKRYTKA_BINDING, "http://hub/epuap/esp")
    return soap.create_message(
        service,
        "nadaj",
        nazwaPliku="pismo.xml",
        typPliku="text/xml",
        zawartosc=content,
        _soapheaders={
            "podmiot": "jan-kowalski",
            "adresSkrytki": "/umwarszawa/skrytka",
            "adresOdpowiedzi": CITIZEN,
            "czyProbne": False,
            "daneDodatkowe": b"",
        },
    )


def write_region(path: Path) -> None:
    offices = [
        (WARSZAWA, "Urząd m.st. Warszawy", "/umwarszawa/skrytka"),
        (RADOM, "Urząd Miejski w Radomiu", "/umradom/skrytka"),
        (PLOCK, "Urząd Miasta Płocka", "/umplock/skrytka"),
    ]
    lines = ['[region]\nname = "tenants"\n']
    lines += [f'[[offices]]\nid = "{o}"\nname = "{n}"\nesp = "{e}"\n' for o, n, e in offices]
    lines.append(
        '[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        'url = "http://127.0.0.1:9/offices/{office}/documents"\n'
    )
    lines.append(
        '[[inbound]]\nname = "esp"\nkind = "epuap-esp"\nurl = "/epuap/esp"\nws_security = true\n'
    )
    for name, document_type in (("pismo", PISMO_OGOLNE), ("decision", DECISION_TYPE)):
        lines.append(
            f'[[routes]]\nname = "{name}"\ndocument_type = "{document_type}"\n'
            'sources = ["eod", "epuap"]\ntarget_system = "eod"\n'
        )
    path.write_text("\n".join(lines), encoding="utf-8")


def hub_command(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hub", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def add_client(env: dict[str, str], name: str, office: str, *options: str) -> str:
    printed = hub_command(env, "client", "add", name, "--office", office, *options)
    return printed.strip().splitlines()[-1]


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "hub serve stopped"
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    pytest.fail("hub serve did not answer within 30 s")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedHub]:
    folder = tmp_path_factory.mktemp(f"tenants-{request.param}")
    with fresh_database(request.param, folder) as database_url:
        yield from served_hub(folder, database_url)


def served_hub(folder: Path, database_url: str) -> Iterator[ServedHub]:
    region = folder / "region.toml"
    write_region(region)
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_REGION_PATH": str(region),
        "HUB_VAR_DIR": str(folder),
        "HUB_QUEUE_PREFIX": f"tenants-{uuid.uuid4().hex[:8]}",
        "HUB_REGION_RELOAD_S": "0",
    }
    hub_command(env, "db", "upgrade")
    hub_command(env, "keys", "init")
    tokens = {
        "warszawa": add_client(env, "eod-warszawa", WARSZAWA, "--source", "eod"),
        "radom": add_client(env, "eod-radom", RADOM, "--source", "eod", "--source", "alkohol"),
        "plock": add_client(env, "eod-plock", PLOCK, "--source", "eod"),
        "portal": add_client(env, "portal", "portal"),
        "warsaw-robot": add_client(
            env, "warsaw-robot", WARSZAWA, "--api", "monitoring", "--role", "operator"
        ),
    }
    store = Store.from_url(database_url)
    with (folder / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process)
        yield ServedHub(url, store, tokens, env)
    finally:
        process.terminate()
        process.wait(timeout=20)
        store.close()


def problem_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["type"].removeprefix("urn:hub:problem:")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"X-Hub-Office": WARSZAWA, "X-Hub-Source": "eod"}, 403, "wrong-office"),
        ({"X-Hub-Office": PLOCK, "X-Hub-Source": "eod"}, 403, "wrong-office"),
        ({"X-Hub-Source": "podatki"}, 403, "wrong-source"),
        ({}, 400, "missing-header"),  # two sources, and none named
        ({"X-Hub-Source": "eod", "X-Hub-Header-signature-checks": "[]"}, 400, "reserved-header"),
        ({"X-Hub-Source": "eod", "X-Hub-Header-forwarded-from": WARSZAWA}, 400, "reserved-header"),
        ({"X-Hub-Source": "eod", "X-Hub-Header-party": f"epuap:{CITIZEN}"}, 400, "reserved-header"),
        ({"X-Hub-Source": "eod", "X-Hub-Header-epuap-reply-to": CITIZEN}, 400, "reserved-header"),
        (
            {"X-Hub-Source": "eod", "X-Hub-Header-statutory-deadline-days": "900"},
            400,
            "reserved-header",
        ),
        ({"X-Hub-Source": "eod", "X-Hub-Header-signed-by": "CN=Jan"}, 400, "reserved-header"),
        (
            {"X-Hub-Source": "eod", "X-Hub-Header-hub-endpoint": f"eod@{WARSZAWA}"},
            400,
            "reserved-header",
        ),
        ({"X-Hub-Source": "eod", "X-Hub-Header-mapped-by": "x"}, 400, "reserved-header"),
        ({"X-Hub-Source": "eod", "X-Hub-Header-colour": "red"}, 400, "header-not-allowed"),
    ],
)
def test_radom_cannot_speak_as_another_office_or_source_nor_write_the_hubs_headers(
    hub, headers, status, code
):
    before = hub.snapshot()
    answer = hub.post("radom", **headers)
    assert problem_of(answer) == (status, code)
    assert hub.snapshot() == before
    assert hub.last_quarantined() == code


def test_radom_cannot_write_into_forward_read_or_close_warsaws_case(hub):
    case_id = hub.warsaw_case()
    before = hub.snapshot()
    missing = problem_of(
        hub.post("radom", **{"X-Hub-Source": "eod", "X-Hub-Correlation-ID": "no-such-case"})
    )

    into = hub.post("radom", **{"X-Hub-Source": "eod", "X-Hub-Correlation-ID": case_id})
    moved = hub.post(
        "radom",
        PISMO,
        **{
            "X-Hub-Source": "eod",
            "X-Hub-Correlation-ID": case_id,
            "X-Hub-Forward-To": PLOCK,
        },
    )
    read = hub.case("radom", case_id)
    closed = hub.report("radom", case_id, "closed")

    assert missing == (404, "case-not-found")
    for answer in (into, moved, read, closed):
        assert problem_of(answer) == missing, answer.text
    assert hub.snapshot() == before
    assert hub.case("warszawa", case_id).json()["status"] == "received"


def test_warsaw_forwards_its_own_case_and_only_then_radom_may_act_on_it(hub):
    case_id = hub.warsaw_case()
    forwarded = hub.post(
        "warszawa",
        PISMO,
        **{"X-Hub-Correlation-ID": case_id, "X-Hub-Forward-To": RADOM},
    )
    assert forwarded.status_code == 202, forwarded.text

    assert hub.case("warszawa", case_id).status_code == 404
    case = hub.case("radom", case_id).json()
    assert case["office"] == RADOM
    assert [(s["from"], s["to"]) for s in case["history"] if s["event"] == "forwarded"] == [
        (WARSZAWA, RADOM)
    ]
    assert hub.report("radom", case_id, "assigned").status_code == 201
    # Warsaw's decision on the case it handed over is now Radom's to give.
    late = hub.post("warszawa", **{"X-Hub-Correlation-ID": case_id})
    assert problem_of(late) == (404, "case-not-found")


def test_two_offices_idempotency_keys_never_collide(hub):
    case_id = hub.warsaw_case()
    radom = hub.post(
        "radom", decision("Radom"), **{"Idempotency-Key": "2024/0001", "X-Hub-Source": "eod"}
    )
    warsaw = hub.post(
        "warszawa",
        decision("Warszawa"),
        **{"Idempotency-Key": "2024/0001", "X-Hub-Correlation-ID": case_id},
    )

    assert radom.status_code == warsaw.status_code == 202
    assert radom.json()["envelope_id"] != warsaw.json()["envelope_id"]
    ids = {radom.json()["envelope_id"]: RADOM, warsaw.json()["envelope_id"]: WARSZAWA}
    with hub.store.reading() as connection:
        stored = dict(
            connection.execute(
                select(MESSAGES.c.id, MESSAGES.c.destination).where(MESSAGES.c.id.in_(ids))
            ).all()
        )
    assert stored == ids


def test_a_key_used_again_answers_as_the_first_time_or_conflicts_with_another_body(hub):
    first = hub.post("radom", **{"Idempotency-Key": "2024/0002", "X-Hub-Source": "eod"})
    again = hub.post("radom", **{"Idempotency-Key": "2024/0002", "X-Hub-Source": "eod"})
    before = hub.snapshot()
    other = hub.post(
        "radom", decision("inna"), **{"Idempotency-Key": "2024/0002", "X-Hub-Source": "eod"}
    )

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert problem_of(other) == (409, "idempotency-conflict")
    assert hub.snapshot() == before


def test_the_portal_reads_only_for_the_party_it_names_and_may_not_post(hub):
    case_id = hub.warsaw_case()
    own = hub.case("portal", case_id, **{"X-Hub-Party": f"epuap:{CITIZEN}"})
    other = hub.case("portal", case_id, **{"X-Hub-Party": "epuap:/anna-nowak/skrytka"})
    posted = hub.post("portal", **{"X-Hub-Source": "eod"})

    assert own.status_code == 200
    assert problem_of(other) == (404, "case-not-found")
    assert problem_of(posted) == (403, "forbidden-api")


@pytest.mark.parametrize("signer", [None, RADOM, "hub"])
def test_only_epuap_may_push_to_the_esp_and_a_stranger_gets_no_upp(hub, signer):
    before = hub.snapshot()
    answer = hub.push(signer)

    assert answer.status_code == 500  # a SOAP 1.1 fault
    assert b"Fault" in answer.content
    assert b"<kod>13</kod>" in answer.content.replace(b"ns0:", b"").replace(b"ns1:", b"")
    assert b"UPP" not in answer.content
    assert hub.snapshot() == before
    assert hub.last_quarantined() == "wyjatek-13"


def test_epuaps_own_push_is_stored_and_answered(hub):
    before = hub.snapshot()
    answer = hub.push("epuap", PISMO.replace(b"Wniosek", b"Wniosek z ePUAP"))
    assert answer.status_code == 200, answer.text
    assert hub.snapshot()["messages"] == before["messages"] + 1


def test_warsaws_operator_robot_cannot_see_or_act_on_radoms_dead_letters_or_endpoint(hub):
    radom_message, radom_delivery = dead_letter(hub.store, RADOM)
    warsaw_message, _ = dead_letter(hub.store, WARSZAWA)
    before = hub.snapshot()

    listed = hub.monitoring("warsaw-robot", "GET", "/dead").json()
    refused = [
        hub.monitoring("warsaw-robot", "GET", f"/messages/{radom_message}"),
        hub.monitoring("warsaw-robot", "POST", f"/dead/{radom_delivery}/replay", reason="x"),
        hub.monitoring("warsaw-robot", "POST", f"/endpoints/eod@{RADOM}/pause", reason="x"),
    ]

    shown = {item["message_id"] for item in listed["dead"]}
    assert warsaw_message in shown
    assert radom_message not in shown
    assert [answer.status_code for answer in refused] == [404, 404, 404]
    assert hub.snapshot() == before
    own = hub.monitoring("warsaw-robot", "POST", f"/endpoints/eod@{WARSZAWA}/pause", reason="x")
    assert own.status_code == 200, own.text


def test_a_stranger_is_refused_and_a_revoked_client_at_its_next_call(hub):
    """Runs last: it revokes Płock's client."""
    before = hub.snapshot()
    hub.tokens["stranger"] = "not-a-token"
    assert problem_of(hub.post("stranger")) == (401, "unauthorized")
    assert hub.post("plock").status_code == 202

    hub_command(hub.env, "client", "revoke", "eod-plock")
    revoked = hub.post("plock")

    assert problem_of(revoked) == (401, "unauthorized")
    assert hub.snapshot()["messages"] == before["messages"] + 1
    with hub.store.reading() as connection:
        audited = list(
            connection.scalars(select(AUDIT.c.event).where(AUDIT.c.message_id.is_(None)))
        )
    assert (audited.count("client-added"), audited.count("client-revoked")) == (5, 1)
