"""Which offices the demo and the drill file with: the whole region unless told fewer."""

import click
import pytest

from hub.errors import ConfigurationError
from hub.region import load_region
from hub.settings import embedded_region_path
from simulators.demo import OfficeCount, demo_offices
from simulators.forms import offices_offering

SAMPLE = load_region(embedded_region_path(), environ={})


def test_all_is_every_office_of_the_region():
    chosen = demo_offices(SAMPLE, OfficeCount().convert("all", None, None))

    assert chosen == list(SAMPLE.offices)
    assert len(chosen) == 357


def test_a_few_offices_are_the_first_ones_with_a_county_among_them():
    counties = {office.id for office in offices_offering(SAMPLE, "zajecie-pasa-drogowego")}

    chosen = demo_offices(SAMPLE, OfficeCount().convert("4", None, None))

    assert chosen[:3] == list(SAMPLE.offices)[:3]
    assert len(chosen) == 4
    assert counties & set(chosen)


def test_more_offices_than_the_region_has_is_refused_with_the_region_size():
    with pytest.raises(ConfigurationError, match="has 357 offices; asked for 400"):
        demo_offices(SAMPLE, 400)


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_an_office_count_must_be_a_positive_number_or_all(value):
    with pytest.raises(click.BadParameter):
        OfficeCount().convert(value, None, None)
