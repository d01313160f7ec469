"""Filings of the catalogue's services for the demo: a tax declaration, an alcohol permit
application, a road-lane occupation application, each addressed to an office that offers
the service.

The templates are realistic forms in the hub's own form namespaces (the same the
mappings read, see ``mappings/README.md``); each filing is a template addressed to its
office (the ``teryt`` attribute of its authority) and numbered, so no two are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from hub.region import Office, Region

TEMPLATES = Path(__file__).parent
# Services with a form template here; the general letter comes from the ePUAP simulator.
SERVICES_WITH_FORMS = (
    "podatek-od-nieruchomosci",
    "zezwolenie-alkoholowe",
    "zajecie-pasa-drogowego",
)
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class Filing:
    """One form to file: with which office, for which service, and the document."""

    office: Office
    service: str
    document: bytes


def offices_offering(region: Region, service: str) -> list[Office]:
    """The region's offices that take filings of ``service`` (in catalogue order)."""
    return [office for office in region.offices.values() if region.handling_of(service, office.id)]


def filings(region: Region, per_service: int) -> list[Filing]:
    """``per_service`` filings of each service with a template, spread over its offices."""
    made = []
    for service in SERVICES_WITH_FORMS:
        offices = offices_offering(region, service)
        for number in range(per_service if offices else 0):
            office = offices[number % len(offices)]
            made.append(Filing(office, service, form(service, office, number)))
    return made


def form(service: str, office: Office, number: int) -> bytes:
    """The template of ``service`` addressed to ``office``, told apart by ``number``."""
    root = etree.parse(str(TEMPLATES / f"{service}.xml"), PARSER).getroot()
    for authority in root.iter():
        if isinstance(authority.tag, str) and authority.get("teryt") is not None:
            authority.set("teryt", office.id)
            authority.text = office.name
    root.addprevious(etree.Comment(f" demo filing {number} for {office.id} "))
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
