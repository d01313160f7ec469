from hub.region import load_region
from hub.settings import embedded_region_path
from simulators.demo import (
    register_queue_pairs,
    register_templates,
    render_region,
    with_register_queues,
)


def test_the_demo_writes_a_region_that_loads_back_the_same(tmp_path):
    region = load_region(embedded_region_path(), environ={"HUB_EOD_URL": "http://eod:1"})
    chosen = region.restricted_to(list(region.offices)[:3])
    path = tmp_path / "region.toml"
    path.write_text(render_region(chosen), encoding="utf-8")

    reloaded = load_region(path, environ={})
    assert reloaded.offices == chosen.offices
    assert reloaded.endpoints == chosen.endpoints
    assert reloaded.routes == chosen.routes
    assert reloaded.endpoints["eod@146501_1"].url == "http://eod:1/offices/146501_1/documents"


def test_the_written_region_keeps_the_catalogue(tmp_path):
    region = load_region(embedded_region_path(), environ={})
    chosen = region.restricted_to(["146501_1", "1421", "142106_2"])
    path = tmp_path / "region.toml"
    path.write_text(render_region(chosen), encoding="utf-8")

    reloaded = load_region(path, environ={})
    assert reloaded.services == chosen.services
    assert reloaded.handling == chosen.handling
    assert {h.system for h in reloaded.handling if "1421" in h.offices} == {"eod", "drogi"}


def test_the_sample_regions_registers_are_two_shared_interfaces_under_the_demos_prefix():
    region = with_register_queues(load_region(embedded_region_path(), environ={}), "hub-demo.")

    assert sum(e.kind == "registers-amqp" for e in region.endpoints.values()) == 356
    assert register_queue_pairs(region) == [
        ("hub-demo.legacy.alkohol.in", "hub-demo.legacy.alkohol.out"),
        ("hub-demo.legacy.drogi.in", "hub-demo.legacy.drogi.out"),
    ]
    assert register_templates(region)["alkohol"] == (
        "hub-demo.legacy.{system}.in",
        "hub-demo.legacy.{system}.out",
    )


def test_per_office_register_templates_stay_per_office_under_the_demos_prefix(tmp_path):
    path = tmp_path / "region.toml"
    path.write_text(
        '[region]\nname = "t"\n[[offices]]\nid = "1421"\nname = "S"\n'
        '[[offices]]\nid = "1432"\nname = "T"\n[[systems]]\nname = "zabytki"\n'
        'kind = "registers-amqp"\nurl = "amqp://x"\n',
        encoding="utf-8",
    )
    region = with_register_queues(load_region(path, environ={}), "p.")

    assert register_queue_pairs(region) == [
        ("p.legacy.zabytki.1421.in", "p.legacy.zabytki.1421.out"),
        ("p.legacy.zabytki.1432.in", "p.legacy.zabytki.1432.out"),
    ]
