"""Office to office: a gmina forwards a case to its powiat through the hub, tracked as one case."""

from __future__ import annotations

import pytest

from adapters.eod.inbound import INTAKE_PATH
from hub.envelope import Address, Envelope
from hub.identity import ClientRegistry
from hub.web import create_app

PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
PISMO = f'<w:Pismo xmlns:w="{PISMO_OGOLNE}"><w:T>Wniosek o zajęcie pasa</w:T></w:Pismo>'.encode()
RASZYN, PRUSZKOW = "142106_2", "1421"
CASE_TOKENS = {"portal": "portal-token", RASZYN: "raszyn-token", PRUSZKOW: "pruszkow-token"}


@pytest.fixture
def region_path(tmp_path, eod):
    path = tmp_path / "region.toml"
    path.write_text(
        '[region]\nname = "test region"\n'
        f'[[offices]]\nid = "{RASZYN}"\nname = "Urząd Gminy Raszyn"\nkind = "gmina wiejska"\n'
        'esp = "/ugraszyn/skrytka"\n'
        f'[[offices]]\nid = "{PRUSZKOW}"\nname = "Starostwo Powiatowe w Pruszkowie"\n'
        'kind = "powiat"\nesp = "/sppruszkow/skrytka"\n'
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod.url}/offices/{{office}}/documents"\n'
        f'[[routes]]\nname = "pismo"\ndocument_type = "{PISMO_OGOLNE}"\ntarget_system = "eod"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def http(settings, store):
    registry = ClientRegistry(store)
    registry.add("portal", "portal", token=CASE_TOKENS["portal"])
    registry.add("eod-raszyn", RASZYN, sources=["eod"], token=CASE_TOKENS[RASZYN])
    registry.add("eod-pruszkow", PRUSZKOW, sources=["eod"], token=CASE_TOKENS[PRUSZKOW])
    return create_app(settings, store).test_client()


def forward(http, case_id, key="forward-1", to=PRUSZKOW):
    return http.post(
        INTAKE_PATH,
        data=PISMO,
        content_type="application/xml",
        headers={
            "Authorization": f"Bearer {CASE_TOKENS[RASZYN]}",
            "X-Hub-Source": "eod",
            "X-Hub-Office": RASZYN,
            "X-Hub-Forward-To": to,
            "Idempotency-Key": key,
            "X-Hub-Correlation-ID": case_id,
        },
    )


def test_a_gmina_forwards_a_filing_to_its_powiat_and_the_case_moves_with_it(hub, eod, http):
    filing = Envelope(
        document_type=PISMO_OGOLNE,
        source="epuap",
        destination=Address(RASZYN),
        body=PISMO,
        headers={"epuap-reply-to": "/jan-kowalski/skrytka"},
    )
    hub.store.accept(filing)
    hub.start_relay()
    hub.start_worker()
    hub.wait_until_settled(1)

    answer = forward(http, filing.correlation_id)
    assert answer.status_code == 202, answer.json
    again = forward(http, filing.correlation_id)
    assert (again.json, again.headers["Idempotent-Replayed"]) == (answer.json, "true")
    messages = hub.wait_until_settled(2)

    assert {row.status for row in messages} == {"delivered"}
    arrivals = eod.admin("GET", "/_sim/received")
    assert set(arrivals) == {str(filing.envelope_id), answer.json["envelope_id"]}
    assert all(entry["count"] == 1 for entry in arrivals.values())
    case = http.get(
        f"/api/cases/{filing.correlation_id}",
        headers={
            "Authorization": f"Bearer {CASE_TOKENS['portal']}",
            "X-Hub-Party": "epuap:/jan-kowalski/skrytka",
        },
    ).json
    assert case["office"] == PRUSZKOW
    forwarded = [step for step in case["history"] if step["event"] == "forwarded"]
    assert [(step["from"], step["to"]) for step in forwarded] == [(RASZYN, PRUSZKOW)]
    for office, status in ((PRUSZKOW, 200), (RASZYN, 404)):
        seen = http.get(
            f"/api/cases/{filing.correlation_id}",
            headers={"Authorization": f"Bearer {CASE_TOKENS[office]}"},
        )
        assert seen.status_code == status


@pytest.mark.parametrize(
    ("to", "status", "code"),
    [("999999_9", 404, "unknown-office"), (RASZYN, 422, "forward-to-self")],
)
def test_a_forward_to_nowhere_is_refused(http, to, status, code):
    answer = forward(http, "case-1", to=to)
    assert (answer.status_code, answer.json["type"]) == (status, f"urn:hub:problem:{code}")
