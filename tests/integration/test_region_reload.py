"""A region file changed while documents flow: the workers take it between messages.

The catalogue gains an office and a second system that handles the service at an
existing office. Documents routed before the change go where the old catalogue said,
documents routed after it where the new one says (the new endpoints' queues declared
and consumed without a restart), and every document reaches every destination once.
A broken file written afterwards is refused and the flow goes on with the last good one.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from legacy_support import document, submit
from sqlalchemy import select
from support import OFFICES, serve_in_thread

from hub.identity import ClientRegistry
from hub.store.models import DeliveryRow
from hub.web import REGION_EXTENSION, create_app
from simulators.eod.server import create_app as create_eod_app

PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
WARSAW, COUNTY = OFFICES[0][0], OFFICES[1][0]
RASZYN = "142106_2"
RELOAD_S = 0.2


@pytest.fixture
def copy_eod():
    simulator = serve_in_thread(create_eod_app())
    yield simulator
    simulator.stop()


def region_text(eod_url: str, copy_url: str, *, grown: bool) -> str:
    offices = [*OFFICES, (RASZYN, "Urząd Gminy Raszyn", "/ugraszyn/skrytka")] if grown else OFFICES
    lines = ['[region]\nname = "reload test region"\n']
    for office_id, name, esp in offices:
        lines.append(f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n')
    lines.append(
        '[[services]]\nid = "pismo-ogolne"\nname = "Pismo ogólne"\n'
        f'form = "{PISMO}"\ndeadline_days = 30\n'
    )
    lines.append(
        f'[[systems]]\nname = "eod"\nkind = "eod-rest"\n'
        f'url = "{eod_url}/offices/{{office}}/documents"\ntimeout_s = 5.0\n'
    )
    lines.append('[[handling]]\nservice = "pismo-ogolne"\nsystems = ["eod"]\noffices = "*"\n')
    if grown:
        # Warsaw's filings now also go to a second system (its archive's copy of the EOD).
        lines.append(
            f'[[systems]]\nname = "archiwum"\nkind = "eod-rest"\noffices = ["{WARSAW}"]\n'
            f'url = "{copy_url}/offices/{{office}}/documents"\ntimeout_s = 5.0\n'
        )
        lines.append(
            f'[[handling]]\nservice = "pismo-ogolne"\nsystems = ["archiwum"]\n'
            f'offices = ["{WARSAW}"]\n'
        )
    return "\n".join(lines)


@pytest.fixture
def region_path(tmp_path, eod, copy_eod):
    path = tmp_path / "region.toml"
    path.write_text(region_text(eod.url, copy_eod.url, grown=False), encoding="utf-8")
    return path


def replace_file(path, text):
    """Write ``text`` over ``path`` as an editor or a deployment does: whole, by rename."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)


def letter(office):
    return document(office, PISMO, b"<wnio:Dokument xmlns:wnio='urn:x'/>")


def test_a_catalogue_reload_mid_flow_takes_the_new_routes_and_loses_nothing(
    hub, settings, region_path, eod, copy_eod
):
    reloading = settings.replace(region_reload_s=RELOAD_S)
    hub.start_relay()
    hub.start_worker(reloading)
    before = [submit(hub, letter(office)) for office in (WARSAW, COUNTY) * 10]
    hub.wait_until_settled(len(before))

    # Documents keep coming while the file is replaced.
    during: list[str] = []
    flowing = threading.Thread(
        target=lambda: during.extend(submit(hub, letter(WARSAW)) for _ in range(20))
    )
    flowing.start()
    replace_file(region_path, region_text(eod.url, copy_eod.url, grown=True))
    flowing.join()
    # Past the reload interval, every worker looks at the file before its next document.
    time.sleep(RELOAD_S * 3)
    after_warsaw = [submit(hub, letter(WARSAW)) for _ in range(10)]
    after_raszyn = [submit(hub, letter(RASZYN)) for _ in range(10)]
    everything = before + during + after_warsaw + after_raszyn
    hub.wait_until_settled(len(everything), timeout_s=60)

    endpoints = endpoints_by_message(hub)
    assert {hub_status(hub, m) for m in everything} == {"delivered"}
    for message_id in before:
        assert len(endpoints[message_id]) == 1
    for message_id in after_warsaw:
        assert endpoints[message_id] == [f"archiwum@{WARSAW}", f"eod@{WARSAW}"]
    for message_id in after_raszyn:
        assert endpoints[message_id] == [f"eod@{RASZYN}"]
    for message_id in during:
        assert endpoints[message_id] in ([f"eod@{WARSAW}"], [f"archiwum@{WARSAW}", f"eod@{WARSAW}"])
    # Each destination got each of its documents exactly once.
    assert_received_once(eod, everything)
    copied = [m for m in everything if f"archiwum@{WARSAW}" in endpoints[m]]
    assert_received_once(copy_eod, copied)

    # A broken catalogue is refused: the last good one keeps routing.
    replace_file(region_path, "[[offices]]\nid = 14\n")
    time.sleep(RELOAD_S * 3)
    last = submit(hub, letter(RASZYN))
    hub.wait_until_settled(len(everything) + 1)
    assert endpoints_by_message(hub)[last] == [f"eod@{RASZYN}"]
    assert hub_status(hub, last) == "delivered"


def endpoints_by_message(hub) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with hub.store.session() as session:
        for delivery in session.scalars(select(DeliveryRow)):
            assert delivery.status == "delivered", (delivery.endpoint, delivery.status)
            found.setdefault(delivery.message_id, []).append(delivery.endpoint)
    return {message_id: sorted(endpoints) for message_id, endpoints in found.items()}


def hub_status(hub, message_id: str) -> str:
    return next(row.status for row in hub.messages() if row.id == message_id)


def assert_received_once(simulator, message_ids):
    received = simulator.admin("GET", "/_sim/received")
    assert sorted(received) == sorted(message_ids)
    assert {entry["count"] for entry in received.values()} == {1}


def test_every_door_of_a_running_app_takes_a_new_office_from_one_reloaded_region(
    settings, store, region_path, eod, copy_eod
):
    app = create_app(settings.replace(region_reload_s=RELOAD_S), store)
    http = app.test_client()
    raszyn = ClientRegistry(store).add("eod-raszyn", RASZYN, sources=["eod"])

    def post_letter():
        return http.post(
            "/api/documents",
            data=b'<w:Pismo xmlns:w="http://crd.gov.pl/wzor/2013/12/12/1410/"/>',
            content_type="application/xml",
            headers={"Authorization": f"Bearer {raszyn}", "Idempotency-Key": uuid.uuid4().hex},
        )

    assert http.get(f"/api/catalogue/offices/{RASZYN}/services").status_code == 404
    assert post_letter().json["type"] == "urn:hub:problem:unroutable"

    replace_file(region_path, region_text(eod.url, copy_eod.url, grown=True))
    time.sleep(RELOAD_S * 3)

    assert http.get(f"/api/catalogue/offices/{RASZYN}/services").status_code == 200
    assert post_letter().status_code == 202
    assert app.extensions[REGION_EXTENSION].current().offices[RASZYN].name == "Urząd Gminy Raszyn"
