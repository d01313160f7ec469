"""A route that maps: the national form goes in, the legacy system gets its own format."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from legacy_support import document, submit, write_region
from support import serve_in_thread

import mappings
from simulators.tax.server import DECLARATIONS_PATH, create_app

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mappings"
MAPPING = "property-tax-declaration-to-tax-system"
DECLARATION = mappings.MAPPINGS[MAPPING].source_type


@pytest.fixture
def tax():
    simulator = serve_in_thread(create_app())
    yield simulator
    simulator.stop()


@pytest.fixture
def region_path(tmp_path, tax):
    return write_region(
        tmp_path / "region.toml",
        systems=[{"name": "podatki", "kind": "tax-rest", "url": f"{tax.url}{DECLARATIONS_PATH}"}],
        routes=[
            {
                "name": "property-tax",
                "document_type": DECLARATION,
                "target_system": "podatki",
                "steps": ["check_well_formed", f"apply_mapping:{MAPPING}"],
            }
        ],
    )


def test_a_property_tax_declaration_reaches_the_tax_system_as_its_json(hub, tax):
    form = (FIXTURES / MAPPING / "in1-flat-in-warsaw" / "input.xml").read_bytes()
    envelope = document("146501_1", DECLARATION, form)
    hub.start_relay()
    hub.start_worker()
    message_id = submit(hub, envelope)

    [message] = hub.wait_until_settled(1)

    assert message.status == "delivered"
    expected = mappings.apply(MAPPING, form, {**envelope.headers, "envelope-id": message_id})
    registered = tax.admin("GET", "/_sim/received")[message_id]
    assert registered["form"] == "IN-1"
    assert registered["sha256"] == hashlib.sha256(expected.body).hexdigest()


def test_a_declaration_the_mapping_cannot_read_is_rejected_with_the_path(hub, tax):
    form = (FIXTURES / MAPPING / "error-building-without-area" / "input.xml").read_bytes()
    hub.start_relay()
    hub.start_worker()
    submit(hub, document("146501_1", DECLARATION, form))

    [message] = hub.wait_until_settled(1)

    assert message.status == "rejected"
    assert message.status_reason.startswith("mapping-failed: property-tax-declaration")
    assert " at /Deklaracja/" in message.status_reason
    assert tax.admin("GET", "/_sim/received") == {}
