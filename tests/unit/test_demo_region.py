from hub.region import load_region
from hub.settings import embedded_region_path
from simulators.demo import render_region


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
