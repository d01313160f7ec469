"""The embedded sample region: every Mazowieckie office from TERYT, and its routing table."""

import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.envelope import Address, Envelope
from hub.errors import UnroutableDocument
from hub.region import load_region
from hub.routing import Router
from hub.runtime import route_steps
from hub.settings import Settings, embedded_region_path

ROOT = Path(__file__).parents[2]
SAMPLE = load_region(embedded_region_path(), environ={})
GMINA = {"gmina miejska", "gmina wiejska", "gmina miejsko-wiejska"}
COUNTY = {"powiat", "miasto na prawach powiatu"}
OFFICE_ID = {
    "województwo": re.compile(r"^14$"),
    "powiat": re.compile(r"^14[0-5][0-9]$"),
    "miasto na prawach powiatu": re.compile(r"^146[1-5]$"),
    "gmina miejska": re.compile(r"^14\d{4}_1$"),
    "gmina wiejska": re.compile(r"^14\d{4}_2$"),
    "gmina miejsko-wiejska": re.compile(r"^14\d{4}_3$"),
}


def expected_systems(kind: str, service: str) -> list[str]:
    """Who handles what, written from the law rather than read from the region file."""
    if service == "pismo-ogolne":
        return ["eod"]
    if service in {"podatek-od-nieruchomosci", "zezwolenie-alkoholowe"} and kind in GMINA:
        return ["eod", "podatki" if service == "podatek-od-nieruchomosci" else "alkohol"]
    if service == "zajecie-pasa-drogowego" and kind in COUNTY:
        return ["eod", "drogi"]
    return []


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    return Router(SAMPLE, route_steps(Settings(var_dir=tmp_path_factory.mktemp("var"))))


def test_the_sample_region_has_every_mazowieckie_office_by_kind():
    kinds = collections.Counter(office.kind for office in SAMPLE.offices.values())
    assert kinds == {
        "województwo": 1,
        "powiat": 37,
        "miasto na prawach powiatu": 5,
        "gmina miejska": 35,
        "gmina wiejska": 203,
        "gmina miejsko-wiejska": 76,
    }
    for office in SAMPLE.offices.values():
        assert OFFICE_ID[office.kind].match(office.id), office


def test_every_office_has_its_own_mailboxes():
    offices = list(SAMPLE.offices.values())
    assert len({office.esp_address for office in offices}) == len(offices)
    assert len({office.edoreczenia_address for office in offices}) == len(offices)


def test_the_demo_offices_come_first_as_they_always_were():
    first = list(SAMPLE.offices)[:5]
    assert first == ["14", "146501_1", "146301_1", "146201_1", "146401_1"]
    assert SAMPLE.offices["146501_1"].esp_address == "/umwarszawa/skrytka"


def test_the_region_file_is_what_the_generator_makes_from_teryt():
    script = ROOT / "scripts" / "make_region.py"
    checked = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


ROUTING_TABLE = [
    (office.id, office.kind, service)
    for office in SAMPLE.offices.values()
    for service in SAMPLE.services
]


@pytest.mark.parametrize(("office", "kind", "service"), ROUTING_TABLE)
def test_routing_table(router, office, kind, service):
    filing = Envelope(
        document_type=SAMPLE.services[service].form,
        source="epuap",
        destination=Address(office),
        body=b"<x/>",
    )
    systems = expected_systems(kind, service)
    if not systems:
        with pytest.raises(UnroutableDocument, match=f"service {service} .* office {office}"):
            router.decide(filing)
        return
    assert [d.endpoint for d in router.decide(filing)] == [f"{s}@{office}" for s in systems]


def test_the_routing_table_covers_every_office_and_service():
    assert len(SAMPLE.services) == 4
    assert len(ROUTING_TABLE) == 357 * 4
