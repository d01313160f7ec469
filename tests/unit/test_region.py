import pytest

from hub.errors import ConfigurationError
from hub.region import load_region, parse_region


def test_system_tables_expand_to_one_endpoint_per_office():
    region = parse_region(
        {
            "offices": [{"id": "14", "name": "UMWM"}, {"id": "1421", "name": "SP Pruszków"}],
            "systems": [{"name": "eod", "kind": "eod-rest", "url": "http://eod/offices/{office}"}],
        }
    )
    assert region.endpoints["eod@1421"].url == "http://eod/offices/1421"
    assert region.endpoints["eod@14"].office == "14"


def test_environment_references_are_expanded_with_defaults(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text(
        '[[offices]]\nid = "14"\nname = "UMWM"\n'
        '[[endpoints]]\nname = "eod@14"\nkind = "eod-rest"\nurl = "${EOD:-http://default}/x"\n'
    )
    assert load_region(path, environ={}).endpoints["eod@14"].url == "http://default/x"
    assert (
        load_region(path, environ={"EOD": "http://set"}).endpoints["eod@14"].url == "http://set/x"
    )


def test_an_unset_reference_without_default_names_the_file(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text('[[inbound]]\nname = "e"\nkind = "epuap-pull"\nurl = "${NOWHERE}"\n')
    with pytest.raises(ConfigurationError, match=r"region\.toml.*NOWHERE"):
        load_region(path, environ={})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"offices": [{"id": "14", "name": "a"}, {"id": "14", "name": "b"}]}, "declared twice"),
        ({"offices": [{"id": "14", "name": "a", "esp": "no-slashes"}]}, "/podmiot/skrytka"),
        ({"endpoints": [{"name": "eod@77", "kind": "k", "url": "u"}]}, "unknown office 77"),
        ({"endpoints": [{"name": "eod", "kind": "k", "url": "u"}]}, "system@office"),
        ({"offices": [{"id": "", "name": "a"}]}, "'id'"),
    ],
)
def test_invalid_regions_are_refused_with_a_reason(raw, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_region(raw)


def test_esp_address_splits_into_podmiot_and_mailbox():
    region = parse_region({"offices": [{"id": "14", "name": "UMWM", "esp": "/umwm/skrytka"}]})
    office = region.office_by_esp("/umwm/skrytka")
    assert office is not None
    assert (office.epuap_podmiot, office.epuap_mailbox) == ("umwm", "skrytka")


def test_restricting_a_region_keeps_only_those_offices_endpoints():
    region = parse_region(
        {
            "offices": [{"id": "14", "name": "a"}, {"id": "1421", "name": "b"}],
            "systems": [{"name": "eod", "kind": "k", "url": "u/{office}"}],
        }
    ).restricted_to(["1421"])
    assert list(region.offices) == ["1421"]
    assert list(region.endpoints) == ["eod@1421"]
