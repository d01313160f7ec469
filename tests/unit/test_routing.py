import pytest

from hub.envelope import Address, Envelope
from hub.errors import ConfigurationError, MalformedDocument, UnroutableDocument
from hub.region import load_region, parse_region
from hub.routing import Router
from hub.runtime import route_steps
from hub.settings import Settings, embedded_region_path

PISMO = "http://crd.gov.pl/wzor/2013/12/12/1410/"


def region(**extra):
    raw = {
        "offices": [
            {"id": "146501_1", "name": "Urząd m.st. Warszawy", "esp": "/umwarszawa/skrytka"},
            {"id": "1421", "name": "Starostwo Powiatowe w Pruszkowie", "kind": "powiat"},
        ],
        "systems": [{"name": "eod", "kind": "eod-rest", "url": "http://eod/{office}"}],
        "routes": [
            {
                "name": "pismo",
                "document_type": PISMO,
                "target_system": "eod",
                "steps": ["check_well_formed"],
            }
        ],
    }
    raw.update(extra)
    return parse_region(raw)


def envelope(document_type=PISMO, office="146501_1", body=b"<wnio:Dokument xmlns:wnio='x'/>"):
    return Envelope(
        document_type=document_type, source="epuap", destination=Address(office), body=body
    )


def test_pismo_ogolne_goes_to_the_addressee_offices_eod():
    decisions = Router(region()).decide(envelope())
    assert [(d.route, d.endpoint) for d in decisions] == [("pismo", "eod@146501_1")]


def test_a_document_type_nobody_handles_is_unroutable_with_the_type_named():
    with pytest.raises(UnroutableDocument, match="urn:unknown"):
        Router(region()).decide(envelope(document_type="urn:unknown"))


def test_an_office_outside_the_catalogue_is_unroutable():
    with pytest.raises(UnroutableDocument, match="not in the service catalogue"):
        Router(region()).decide(envelope(office="999999_9"))


def test_a_route_to_a_system_the_office_lacks_is_unroutable():
    routes = [{"name": "tax", "document_type": PISMO, "target_system": "tax"}]
    with pytest.raises(UnroutableDocument, match="does not have"):
        Router(region(routes=routes)).decide(envelope())


def test_two_matching_routes_fan_a_document_out():
    systems = [
        {"name": "eod", "kind": "eod-rest", "url": "http://eod/{office}"},
        {"name": "tax", "kind": "eod-rest", "url": "http://tax/{office}"},
    ]
    routes = [
        {"name": "to-eod", "document_type": PISMO, "target_system": "eod"},
        {"name": "to-tax", "document_type": PISMO, "target_system": "tax"},
    ]
    decisions = Router(region(systems=systems, routes=routes)).decide(envelope())
    assert sorted(d.endpoint for d in decisions) == ["eod@146501_1", "tax@146501_1"]


def test_routes_can_be_limited_to_some_offices():
    routes = [
        {"name": "county-only", "document_type": PISMO, "target_system": "eod", "offices": ["1421"]}
    ]
    router = Router(region(routes=routes))
    assert router.decide(envelope(office="1421"))[0].endpoint == "eod@1421"
    with pytest.raises(UnroutableDocument):
        router.decide(envelope(office="146501_1"))


def test_the_well_formed_step_refuses_broken_xml():
    decision = Router(region()).decide(envelope())[0]
    with pytest.raises(MalformedDocument):
        decision.apply(envelope(body=b"<not-closed>"))


def test_an_unknown_step_is_a_configuration_error():
    routes = [
        {"name": "pismo", "document_type": PISMO, "target_system": "eod", "steps": ["teleport"]}
    ]
    with pytest.raises(ConfigurationError, match="teleport"):
        Router(region(routes=routes))


def test_the_embedded_region_routes_every_office_to_its_eod(tmp_path):
    sample = load_region(embedded_region_path(), environ={})
    router = Router(sample, route_steps(Settings(var_dir=tmp_path)))
    assert len(sample.offices) >= 10
    for office in sample.offices:
        assert [d.endpoint for d in router.decide(envelope(office=office))] == [f"eod@{office}"]


def test_the_embedded_region_sends_decisions_out_and_files_receipts(tmp_path):
    router = Router(
        load_region(embedded_region_path(), environ={}), route_steps(Settings(var_dir=tmp_path))
    )
    decision = Envelope(
        document_type="urn:hub:eod:decyzja:1",
        source="eod",
        destination=Address("1421"),
        body=b"<d/>",
    )
    upd = Envelope(
        document_type="http://crd.gov.pl/xml/schematy/UPO/2008/05/09/",
        source="epuap",
        destination=Address("1421"),
        body=b"<u/>",
    )
    assert [d.endpoint for d in router.decide(decision)] == ["epuap@1421"]
    assert [d.endpoint for d in router.decide(upd)] == ["receipts@1421"]
