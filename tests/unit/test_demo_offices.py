"""Which offices the demo and the drill file with (the whole region unless told fewer), and
the invoices it hands over."""

import json

import click
import pytest

import mappings
from hub.errors import ConfigurationError
from hub.region import load_region
from hub.settings import embedded_region_path
from simulators.demo import OfficeCount, demo_offices
from simulators.forms import invoices, offices_offering

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


def test_the_demos_invoices_are_valid_fa3_each_its_own_for_offices_with_a_finance_system():
    made = invoices(SAMPLE, 5)

    assert len({invoice.number for invoice in made}) == 5
    assert len({invoice.ksef_number for invoice in made}) == 5
    for invoice in made:
        assert f"finanse@{invoice.office.id}" in SAMPLE.endpoints
        # The mapping validates the FA(3) against the Ministry's XSD before it maps.
        booked = json.loads(
            mappings.apply(
                "ksef-invoice-to-finance", invoice.document, {"ksef-number": invoice.ksef_number}
            )[0]
        )
        assert (booked["number"], booked["ksef_number"]) == (invoice.number, invoice.ksef_number)
