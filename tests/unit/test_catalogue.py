"""The service catalogue in the region file: kinds, services, handling, and errors with lines."""

import pytest

from hub.envelope import Address, Envelope
from hub.errors import ConfigurationError, UnroutableDocument
from hub.region import load_region, parse_region
from hub.routing import Router, routes_for

TAX = "urn:hub:wzor:podatek-od-nieruchomosci:1"
PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"

CATALOGUE = """\
[region]
name = "catalogue test"

[[offices]]
id = "142106_2"
name = "Urząd Gminy Raszyn"
kind = "gmina wiejska"

[[offices]]
id = "1421"
name = "Starostwo Powiatowe w Pruszkowie"
kind = "powiat"

[[services]]
id = "pismo-ogolne"
name = "Pismo ogólne"
form = "http://crd.gov.pl/wzor/2013/12/12/1410/"
deadline_days = 30

[[services]]
id = "podatek-od-nieruchomosci"
name = "Podatek od nieruchomości"
form = "urn:hub:wzor:podatek-od-nieruchomosci:1"
deadline_days = 30

[[systems]]
name = "eod"
kind = "eod-rest"
url = "http://eod/{office}"

[[systems]]
name = "podatki"
kind = "tax-rest"
kinds = ["gmina"]
url = "http://tax/{office}"

[[handling]]
service = "pismo-ogolne"
systems = ["eod"]
offices = "*"
steps = ["check_well_formed"]

[[handling]]
service = "podatek-od-nieruchomosci"
systems = ["eod", "podatki"]
kinds = ["gmina wiejska"]
[handling.steps]
eod = ["check_well_formed"]
podatki = []
"""


def write(tmp_path, text):
    path = tmp_path / "region.toml"
    path.write_text(text, encoding="utf-8")
    return path


def filing(document_type, office="142106_2", **headers):
    return Envelope(
        document_type=document_type,
        source="portal",
        destination=Address(office),
        body=b"<x/>",
        headers=headers,
    )


def test_a_service_handled_by_two_systems_fans_out_to_both(tmp_path):
    router = Router(load_region(write(tmp_path, CATALOGUE), environ={}))
    decisions = router.decide(filing(TAX))
    assert [(d.route, d.endpoint) for d in decisions] == [
        ("service:podatek-od-nieruchomosci:eod", "eod@142106_2"),
        ("service:podatek-od-nieruchomosci:podatki", "podatki@142106_2"),
    ]
    assert [len(d.steps) for d in decisions] == [1, 0]


def test_systems_and_handling_select_offices_by_kind(tmp_path):
    region = load_region(write(tmp_path, CATALOGUE), environ={})
    assert "podatki@1421" not in region.endpoints
    assert region.handling_of("podatek-od-nieruchomosci", "1421") == []


def test_a_service_the_office_does_not_handle_is_unroutable_naming_both(tmp_path):
    router = Router(load_region(write(tmp_path, CATALOGUE), environ={}))
    with pytest.raises(UnroutableDocument) as caught:
        router.decide(filing(TAX, office="1421"))
    assert "podatek-od-nieruchomosci" in caught.value.reason
    assert "1421 (Starostwo Powiatowe w Pruszkowie)" in caught.value.reason


def test_the_service_header_chooses_the_service(tmp_path):
    router = Router(load_region(write(tmp_path, CATALOGUE), environ={}))
    decisions = router.decide(filing("urn:portal:formularz", service="podatek-od-nieruchomosci"))
    assert [d.endpoint for d in decisions] == ["eod@142106_2", "podatki@142106_2"]


def test_a_service_header_outside_the_catalogue_is_unroutable(tmp_path):
    region = load_region(write(tmp_path, CATALOGUE), environ={})
    assert routes_for(region, filing(PISMO, service="teleportacja")) == []
    with pytest.raises(UnroutableDocument, match="'teleportacja' is not in the service catalogue"):
        Router(region).decide(filing(PISMO, service="teleportacja"))


def test_an_explicit_route_to_the_same_system_replaces_the_catalogues(tmp_path):
    text = CATALOGUE + (
        '\n[[routes]]\nname = "tax-by-hand"\n'
        f'document_type = "{TAX}"\ntarget_system = "podatki"\nsteps = ["check_well_formed"]\n'
    )
    router = Router(load_region(write(tmp_path, text), environ={}))
    decisions = router.decide(filing(TAX))
    assert sorted((d.route, d.endpoint) for d in decisions) == [
        ("service:podatek-od-nieruchomosci:eod", "eod@142106_2"),
        ("tax-by-hand", "podatki@142106_2"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ('kind = "powiat"', 'kind = "powiatek"', 12, "office kind 'powiatek' is not one of"),
        (
            'deadline_days = 30\n\n[[services]]\nid = "podatek',
            'deadline_days = "a month"\n\n[[services]]\nid = "podatek',
            18,
            "'deadline_days', a positive whole number",
        ),
        (
            'service = "pismo-ogolne"',
            'service = "pismo-ogolny"',
            38,
            "unknown service 'pismo-ogolny'",
        ),
        ('kinds = ["gmina wiejska"]', 'kinds = ["wieś"]', 46, "kind 'wieś' is not one of"),
        (
            'systems = ["eod"]',
            'systems = ["eod", "podatki"]',
            39,
            "system 'podatki', which office 1421 (Starostwo Powiatowe w Pruszkowie) does not have",
        ),
        ('id = "1421"', 'id = "142106_2"', 10, "offices 142106_2 is declared twice"),
    ],
)
def test_a_wrong_catalogue_names_the_file_the_line_and_the_fault(tmp_path, old, new, line, message):
    assert old in CATALOGUE
    path = write(tmp_path, CATALOGUE.replace(old, new, 1))
    with pytest.raises(ConfigurationError) as caught:
        load_region(path, environ={})
    assert f"region file {path}, line {line}: " in caught.value.reason
    assert message in caught.value.reason


def test_an_endpoint_of_an_unknown_office_names_its_systems_table(tmp_path):
    text = CATALOGUE.replace('kinds = ["gmina"]\n', 'offices = ["149999_9"]\n')
    with pytest.raises(ConfigurationError, match=r"line 34: .*unknown office 149999_9"):
        load_region(write(tmp_path, text), environ={})


def test_teryt_descriptions_of_kinds_are_understood():
    region = parse_region(
        {
            "offices": [
                {"id": "146501_1", "name": "W", "kind": "gmina miejska, miasto stołeczne"},
                {"id": "1465", "name": "W", "kind": "miasto stołeczne, na prawach powiatu"},
                {"id": "146502_8", "name": "Bemowo", "kind": "dzielnica"},
            ]
        }
    )
    kinds = [office.kind for office in region.offices.values()]
    assert kinds == ["gmina miejska", "miasto na prawach powiatu", "jednostka pomocnicza"]


def test_an_office_without_a_kind_is_a_gmina_of_unstated_type():
    region = parse_region({"offices": [{"id": "142106_2", "name": "Raszyn"}]})
    office = region.offices["142106_2"]
    assert office.kind == "gmina"
    assert office.has_kind("gmina")
    assert not office.has_kind("gmina wiejska")


def test_restricting_a_region_keeps_the_handling_of_those_offices(tmp_path):
    region = load_region(write(tmp_path, CATALOGUE), environ={}).restricted_to(["1421"])
    assert [(h.service, h.system, set(h.offices)) for h in region.handling] == [
        ("pismo-ogolne", "eod", {"1421"})
    ]
