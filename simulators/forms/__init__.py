"""Filings of the catalogue's services for the demo: a tax declaration, an alcohol permit
application, a road-lane occupation application, each addressed to an office that offers
the service.

The templates are realistic forms in the hub's own form namespaces (the same the
mappings read, see ``mappings/README.md``); each filing is a template addressed to its
office (the ``teryt`` attribute of its authority) and numbered, so no two are identical.
"""

from __future__ import annotations

import copy
import json
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


# The domain system that decides each service's filings, and its decision's type.
DECIDING_SYSTEMS = {
    "urn:hub:wzor:podatek-od-nieruchomosci:1": ("podatki", "urn:hub:legacy:podatki:decyzja:1"),
    "urn:hub:wzor:zezwolenie-alkoholowe:1": ("alkohol", "urn:hub:legacy:alkohol:decyzja:1"),
    "urn:hub:wzor:zajecie-pasa-drogowego:1": ("drogi", "urn:hub:legacy:drogi:decyzja:1"),
}


@dataclass(frozen=True)
class Decision:
    """A domain system's decision on a filing, as the system hands it to the hub."""

    system: str
    document_type: str
    content_type: str
    document: bytes


def decision_on(filing_type: str, office: Office, case_id: str) -> Decision | None:
    """The deciding system's decision on a filing of ``filing_type`` (None: no such system).

    The templates are each system's own format (the tax system's JSON, the registers'
    XML), addressed to ``office`` and naming the case.
    """
    if filing_type not in DECIDING_SYSTEMS:
        return None
    system, document_type = DECIDING_SYSTEMS[filing_type]
    json_template = TEMPLATES / "decisions" / f"{system}.json"
    if json_template.exists():
        decision = json.loads(json_template.read_text(encoding="utf-8"))
        decision["case_reference"] = case_id[:60]
        decision["office"] |= {"teryt": office.id, "name": office.name}
        body = json.dumps(decision, ensure_ascii=False).encode()
        return Decision(system, document_type, "application/json", body)
    root = etree.parse(str(TEMPLATES / "decisions" / f"{system}.xml"), PARSER).getroot()
    for element in root.iter():
        if isinstance(element.tag, str) and element.get("teryt") is not None:
            element.set("teryt", office.id)
    body = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    return Decision(system, document_type, "application/xml", body)


# A purchase invoice as KSeF hands it over: the Ministry of Finance's FA(3) template
# (CIRFMF/ksef-client-java, invoice-template_v3.xml) as filled for the mapping's golden
# file (tests/fixtures/mappings/ksef-invoice-to-finance/mf-sample-invoice).
INVOICE_TEMPLATE = TEMPLATES / "faktura-fa3.xml"
FA3 = "http://crd.gov.pl/wzor/2025/06/25/13775/"
FINANCE_SYSTEM = "finanse"


@dataclass(frozen=True)
class Invoice:
    """One purchase invoice for an office's finance system, with its KSeF number."""

    office: Office
    number: str
    ksef_number: str
    document: bytes


def invoices(region: Region, count: int) -> list[Invoice]:
    """``count`` FA(3) invoices, numbered, to the offices with a finance system in turn."""
    offices = [
        office
        for office in region.offices.values()
        if f"{FINANCE_SYSTEM}@{office.id}" in region.endpoints
    ]
    template = etree.parse(str(INVOICE_TEMPLATE), PARSER)
    seller_nip = template.findtext(f"{{{FA3}}}Podmiot1/{{{FA3}}}DaneIdentyfikacyjne/{{{FA3}}}NIP")
    made = []
    for sequence in range(count if offices else 0):
        office = offices[sequence % len(offices)]
        number = f"FA/{sequence + 1:06d}/{office.id}"
        invoice = copy.deepcopy(template)
        invoice.find(f"{{{FA3}}}Fa/{{{FA3}}}P_2").text = number  # type: ignore[union-attr]
        ksef_number = f"{seller_nip}-20260605-{sequence:012X}-{sequence % 256:02X}"
        document = etree.tostring(invoice, xml_declaration=True, encoding="utf-8")
        made.append(Invoice(office, number, ksef_number, document))
    return made
