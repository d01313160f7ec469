"""The catalogue API the regional portal reads: offices, services, who handles what."""

import os

import pytest
from flask import Flask

from adapters.portal.catalogue import register
from hub.reload import RegionSource
from hub.settings import Settings
from hub.web import REGION_EXTENSION

REGION = """\
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

[[systems]]
name = "eod"
kind = "eod-rest"
url = "http://user:secret@eod/{office}"

[[handling]]
service = "pismo-ogolne"
systems = ["eod"]
"""


def client_for(settings):
    app = Flask("test")
    app.config["HUB_SETTINGS"] = settings
    # The core app hands every door one reloading region; so does this bare app.
    app.extensions[REGION_EXTENSION] = RegionSource(settings.region_path, settings.region_reload_s)
    register(app)
    return app.test_client()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The API over the embedded sample region."""
    return client_for(Settings(var_dir=tmp_path_factory.mktemp("var")))


def test_offices_are_paged_in_catalogue_order(sample):
    first = sample.get("/api/catalogue/offices?per_page=5").get_json()
    assert first["total"] == 357
    assert [office["id"] for office in first["offices"]] == [
        "14",
        "146501_1",
        "146301_1",
        "146201_1",
        "146401_1",
    ]
    everything = sample.get("/api/catalogue/offices?per_page=1000").get_json()
    assert len(everything["offices"]) == 357
    third = sample.get("/api/catalogue/offices?page=3&per_page=100").get_json()
    assert len(third["offices"]) == 100
    assert third["offices"][0] == everything["offices"][200]


@pytest.mark.parametrize(
    ("kind", "total"),
    [
        ("powiat", 37),
        ("miasto na prawach powiatu", 5),
        ("gmina wiejska", 203),
        ("gmina", 314),
        ("województwo", 1),
        ("jednostka pomocnicza", 0),
    ],
)
def test_offices_filter_by_kind(sample, kind, total):
    answer = sample.get("/api/catalogue/offices", query_string={"kind": kind, "per_page": 1000})
    body = answer.get_json()
    assert body["total"] == total
    assert len(body["offices"]) == total


def test_an_office_lists_its_services_with_systems_and_deadlines(sample):
    body = sample.get("/api/catalogue/offices/142106_2/services").get_json()
    assert body["office"]["name"] == "Urząd Gminy Raszyn"
    offered = {service["id"]: service for service in body["services"]}
    assert sorted(offered) == ["pismo-ogolne", "podatek-od-nieruchomosci", "zezwolenie-alkoholowe"]
    tax = offered["podatek-od-nieruchomosci"]
    assert tax["deadline_days"] == 30
    assert tax["form"] == "urn:hub:wzor:podatek-od-nieruchomosci:1"
    assert tax["systems"] == [
        {"system": "eod", "endpoint": "eod@142106_2", "kind": "eod-rest"},
        {"system": "podatki", "endpoint": "podatki@142106_2", "kind": "tax-rest"},
    ]


def test_a_county_takes_road_lane_filings_and_no_gmina_taxes(sample):
    body = sample.get("/api/catalogue/offices/1421/services").get_json()
    assert [service["id"] for service in body["services"]] == [
        "pismo-ogolne",
        "zajecie-pasa-drogowego",
    ]


def test_services_say_how_many_offices_take_them(sample):
    body = sample.get("/api/catalogue/services").get_json()
    assert {service["id"]: service["offices"] for service in body["services"]} == {
        "pismo-ogolne": 357,
        "podatek-od-nieruchomosci": 314,
        "zezwolenie-alkoholowe": 314,
        "zajecie-pasa-drogowego": 42,
    }


def test_an_unknown_office_is_a_404_problem(sample):
    for path in ("/api/catalogue/offices/999999_9", "/api/catalogue/offices/999999_9/services"):
        answer = sample.get(path)
        assert answer.status_code == 404
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["type"] == "urn:hub:problem:unknown-office"


@pytest.mark.parametrize("query", ["kind=wioska", "page=0", "per_page=5000", "page=x"])
def test_a_bad_query_is_a_400_problem(sample, query):
    answer = sample.get(f"/api/catalogue/offices?{query}")
    assert answer.status_code == 400
    assert answer.get_json()["type"] == "urn:hub:problem:bad-query"


def test_one_office_is_served_without_its_systems_urls(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text(REGION, encoding="utf-8")
    client = client_for(Settings(var_dir=tmp_path, region_path=path))
    body = client.get("/api/catalogue/offices/1421/services").get_data(as_text=True)
    assert "secret" not in body
    assert client.get("/api/catalogue/offices/1421").get_json()["kind"] == "powiat"


def test_the_catalogue_follows_a_changed_region_file(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text(REGION, encoding="utf-8")
    client = client_for(Settings(var_dir=tmp_path, region_path=path, region_reload_s=1e-9))
    assert client.get("/api/catalogue/offices/1408").status_code == 404

    replacement = tmp_path / "new.toml"
    replacement.write_text(
        REGION.replace(
            "[[services]]",
            '[[offices]]\nid = "1408"\nname = "SP Legionowo"\nkind = "powiat"\n\n[[services]]',
        ),
        encoding="utf-8",
    )
    os.replace(replacement, path)
    assert client.get("/api/catalogue/offices/1408").get_json()["name"] == "SP Legionowo"

    path.write_text(REGION.replace('kind = "powiat"', 'kind = "hrabstwo"'), encoding="utf-8")
    # A broken file is refused; the catalogue stays as it was.
    assert client.get("/api/catalogue/offices/1408").status_code == 200
