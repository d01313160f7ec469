"""Property-tax declaration (IN-1 / DN-1) → tax system JSON, and its tax decision → letter.

**property-tax-declaration-to-tax-system.** The portal's form
(``urn:hub:wzor:podatek-od-nieruchomosci:1``, ``schemas/podatek-od-nieruchomosci.xsd``)
becomes the tax system's JSON (``urn:hub:legacy:podatki:deklaracja:1``). Python, because
tax bases are computed: a building's usable area counts in full where the ceiling is
above 2.20 m and at 50% from 1.40 m to 2.20 m, exemptions are subtracted, and the bases
are summed per category over all properties. The tax system applies the municipality's
rates; the mapping computes no tax. The target JSON::

    {"schema": "urn:hub:legacy:podatki:deklaracja:1",
     "form": "IN-1" | "DN-1", "purpose": "filing" | "correction", "tax_year": 2025,
     "office_teryt": "146501_1", "tax_authority": "...", "filed_on": "2025-01-20",
     "liable_from": "2025-01-01" | null,
     "taxpayer": {"kind": "person", "pesel", "first_name", "last_name", "address"}
               | {"kind": "organisation", "nip", "name", "regon" | null, "address"},
     "properties": [{"address", "precinct", "parcels": [...], "land_register" | null,
                     "legal_title": "ownership" | "co-ownership" | "perpetual-usufruct"
                                    | "autonomous-possession",
                     "items": [{"category", "unit": "m2" | "PLN", "declared", "exempt",
                                "tax_base", "exemptions": [{"basis", "amount"}]}]}],
     "tax_bases": {"<category>": "<sum>", ...}}

Amounts are strings with two decimals. Categories: ``land.business``, ``land.water``,
``land.other``, ``land.revitalisation``, ``building.residential``, ``building.business``,
``building.seed-trade``, ``building.health-care``, ``building.other``, ``structure``.
An ``address`` is ``{"street", "building", "unit", "postal_code", "city"}`` (absent parts null).

**property-tax-decision-to-letter.** The tax system's decision
(``urn:hub:legacy:podatki:decyzja:1``, JSON, described at ``property_tax_decision_to_letter``)
becomes the taxpayer's letter, after checking that the items, the total (rounded to full
złoty) and the instalments agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lxml import etree

from mappings.base import JSON, XML, Context, Mapping
from mappings.documents import (
    SCHEMA_DIR,
    Schema,
    decimal_text,
    element_path,
    json_date,
    json_decimal,
    json_field,
    optional_text,
    parse_json,
    parse_xml,
    required_text,
    serialize_json,
    serialize_xml,
)
from mappings.errors import MappingError
from mappings.letter import (
    Address,
    Addressee,
    Letter,
    Office,
    Signer,
    appeal_instruction,
    build_letter,
    list_items,
    polish_amount,
    polish_date,
    polish_number,
)

DECLARATION = "urn:hub:wzor:podatek-od-nieruchomosci:1"
TAX_DECLARATION = "urn:hub:legacy:podatki:deklaracja:1"
TAX_DECISION = "urn:hub:legacy:podatki:decyzja:1"
DECLARATION_SCHEMA = Schema(SCHEMA_DIR / "podatek-od-nieruchomosci.xsd")
NS = {"d": DECLARATION}

CENT = Decimal("0.01")
HALF = Decimal("0.5")

LAND_CATEGORIES = {
    "dzialalnosc-gospodarcza": "land.business",
    "pod-wodami": "land.water",
    "pozostale": "land.other",
    "rewitalizacja": "land.revitalisation",
}
BUILDING_CATEGORIES = {
    "mieszkalny": "building.residential",
    "dzialalnosc-gospodarcza": "building.business",
    "material-siewny": "building.seed-trade",
    "swiadczenia-zdrowotne": "building.health-care",
    "pozostale": "building.other",
}
CATEGORY_ORDER = (*LAND_CATEGORIES.values(), *BUILDING_CATEGORIES.values(), "structure")
LEGAL_TITLES = {
    "wlasnosc": "ownership",
    "wspolwlasnosc": "co-ownership",
    "uzytkowanie-wieczyste": "perpetual-usufruct",
    "posiadanie-samoistne": "autonomous-possession",
}


@dataclass(frozen=True, slots=True)
class TaxItem:
    """One taxable item of a property: what was declared, what is exempt, what is taxed."""

    category: str
    unit: str
    declared: Decimal
    exemptions: tuple[tuple[str, Decimal], ...]

    @property
    def exempt(self) -> Decimal:
        return sum((amount for _, amount in self.exemptions), Decimal(0))

    @property
    def tax_base(self) -> Decimal:
        return self.declared - self.exempt

    def as_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "unit": self.unit,
            "declared": _money(self.declared),
            "exempt": _money(self.exempt),
            "tax_base": _money(self.tax_base),
            "exemptions": [
                {"basis": basis, "amount": _money(amount)} for basis, amount in self.exemptions
            ],
        }


def property_tax_declaration_to_tax_system(body: bytes, context: Context) -> bytes:
    """Translate an IN-1 / DN-1 form into the tax system's declaration JSON.

    Raises:
        MappingError: not this form, invalid against its schema, an IN-1 filed by a
            legal person, or an exemption larger than the item it exempts.
    """
    form = parse_xml(body, namespace=DECLARATION, root="Deklaracja")
    DECLARATION_SCHEMA.validate(form)
    properties = [_property(element) for element in form.findall("d:Nieruchomosc", NS)]
    organ = form.find("d:Organ", NS)
    assert organ is not None  # the schema requires it
    record = {
        "schema": TAX_DECLARATION,
        "form": form.get("rodzaj"),
        "purpose": "filing" if form.get("cel") == "zlozenie" else "correction",
        "tax_year": int(form.get("rok", "0")),
        "office_teryt": organ.get("teryt"),
        "tax_authority": " ".join((organ.text or "").split()),
        "filed_on": required_text(form, "d:DataZlozenia", NS),
        "liable_from": optional_text(form, "d:ObowiazekOd", NS),
        "taxpayer": _taxpayer(form),
        "properties": [
            {**facts, "items": [item.as_json() for item in items]} for facts, items in properties
        ],
        "tax_bases": _tax_bases(item for _, items in properties for item in items),
    }
    return serialize_json(record)


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _address(element: etree._Element) -> dict[str, str | None]:
    return {
        "street": optional_text(element, "d:Ulica", NS),
        "building": optional_text(element, "d:Budynek", NS),
        "unit": optional_text(element, "d:Lokal", NS),
        "postal_code": optional_text(element, "d:KodPocztowy", NS),
        "city": optional_text(element, "d:Miejscowosc", NS),
    }


def _taxpayer(form: etree._Element) -> dict[str, Any]:
    taxpayer = form.find("d:Podatnik", NS)
    assert taxpayer is not None  # the schema requires it
    address = taxpayer.find("d:Adres", NS)
    assert address is not None
    person = taxpayer.find("d:OsobaFizyczna", NS)
    if person is not None:
        return {
            "kind": "person",
            "pesel": required_text(person, "d:PESEL", NS),
            "first_name": required_text(person, "d:Imie", NS),
            "last_name": required_text(person, "d:Nazwisko", NS),
            "address": _address(address),
        }
    if form.get("rodzaj") == "IN-1":
        raise MappingError(
            "an IN-1 information is filed by natural persons; legal persons file DN-1",
            element_path(taxpayer) + "/OsobaPrawna",
        )
    organisation = taxpayer.find("d:OsobaPrawna", NS)
    assert organisation is not None  # the schema's choice
    return {
        "kind": "organisation",
        "nip": required_text(organisation, "d:NIP", NS),
        "name": required_text(organisation, "d:Nazwa", NS),
        "regon": optional_text(organisation, "d:REGON", NS),
        "address": _address(address),
    }


def _property(element: etree._Element) -> tuple[dict[str, Any], list[TaxItem]]:
    address = element.find("d:Adres", NS)
    assert address is not None  # the schema requires it
    facts = {
        "address": _address(address),
        "precinct": required_text(element, "d:Obreb", NS),
        "parcels": [" ".join((p.text or "").split()) for p in element.findall("d:NrDzialki", NS)],
        "land_register": optional_text(element, "d:NrKsiegiWieczystej", NS),
        "legal_title": LEGAL_TITLES[required_text(element, "d:TytulPrawny", NS)],
    }
    items = [
        *(_land(land) for land in element.findall("d:Grunt", NS)),
        *(_building(building) for building in element.findall("d:Budynek", NS)),
        *(_structure(structure) for structure in element.findall("d:Budowla", NS)),
    ]
    return facts, items


def _land(element: etree._Element) -> TaxItem:
    declared = decimal_text(element, "d:Powierzchnia", NS)
    category = LAND_CATEGORIES[element.get("rodzaj", "")]
    return TaxItem(category, "m2", declared, _exemptions(element, declared))


def _building(element: etree._Element) -> TaxItem:
    full = decimal_text(element, "d:PowierzchniaPowyzej220", NS)
    low = element.find("d:Powierzchnia140do220", NS)
    # Usable area under a ceiling of 1.40-2.20 m counts at half; below 1.40 m not at all
    # (ustawa o podatkach i opłatach lokalnych, art. 4 ust. 2).
    declared = full + (
        decimal_text(element, "d:Powierzchnia140do220", NS) * HALF if low is not None else 0
    )
    category = BUILDING_CATEGORIES[element.get("rodzaj", "")]
    return TaxItem(category, "m2", declared, _exemptions(element, declared))


def _structure(element: etree._Element) -> TaxItem:
    declared = decimal_text(element, "d:Wartosc", NS)
    return TaxItem("structure", "PLN", declared, _exemptions(element, declared))


def _exemptions(element: etree._Element, declared: Decimal) -> tuple[tuple[str, Decimal], ...]:
    exemptions = []
    total = Decimal(0)
    for exemption in element.findall("d:Zwolnienie", NS):
        amount = Decimal((exemption.text or "0").strip())
        total += amount
        if total > declared:
            raise MappingError(
                f"exemptions of {total} exceed the declared {declared}", element_path(exemption)
            )
        exemptions.append((" ".join(exemption.get("podstawa", "").split()), amount))
    return tuple(exemptions)


def _tax_bases(items: Iterable[TaxItem]) -> dict[str, str]:
    sums: dict[str, Decimal] = {}
    for item in items:
        sums[item.category] = sums.get(item.category, Decimal(0)) + item.tax_base
    return {category: _money(sums[category]) for category in CATEGORY_ORDER if category in sums}


# --- the decision back ----------------------------------------------------------------------


def property_tax_decision_to_letter(body: bytes, context: Context) -> bytes:
    """Translate the tax system's assessment decision into the taxpayer's letter.

    The decision JSON (``urn:hub:legacy:podatki:decyzja:1``)::

        {"schema": ..., "decision_number", "case_reference", "issued_on", "place",
         "tax_year", "office": {"teryt", "name", "organ", "address"},
         "taxpayer": {"name", "address", "epuap_mailbox"?, "edoreczenia_address"?},
         "assessment": [{"label", "unit": "m2" | "PLN", "tax_base", "rate", "tax"}],
         "total_tax", "instalments": [{"due", "amount"}], "payment_account",
         "legal_basis": [...], "justification": [...]?,
         "appeal": {"body", "days"}, "signer": {"name", "position"}}

    ``rate`` is złoty per m² for ``m2`` items and a percentage for ``PLN`` (structures).

    Raises:
        MappingError: a member is missing, or the total is not the items' tax rounded
            to full złoty, or the instalments do not add up to the total.
    """
    decision = parse_json(body, schema=TAX_DECISION)
    assessment = _assessment(decision)
    total = _checked_total(decision, assessment)
    instalments = _checked_instalments(decision, total)
    year = json_field(decision, "tax_year", "$", int)
    letter = Letter(
        kind="decyzja",
        office=_office(json_field(decision, "office", "$", dict)),
        case_reference=json_field(decision, "case_reference", "$", str),
        place=json_field(decision, "place", "$", str),
        issued_on=json_date(decision, "issued_on", "$"),
        addressee=_addressee(json_field(decision, "taxpayer", "$", dict)),
        title=(
            f"DECYZJA nr {json_field(decision, 'decision_number', '$', str)} w sprawie "
            f"wymiaru podatku od nieruchomości na {year} r."
        ),
        legal_basis=_strings(decision, "legal_basis"),
        decision=[
            f"Ustalam wysokość zobowiązania podatkowego w podatku od nieruchomości na {year} r. "
            f"w kwocie {polish_amount(total)}, w tym:",
            *list_items([_assessment_line(line) for line in assessment]),
            _instalments_paragraph(instalments),
            f"Wpłat należy dokonywać na rachunek bankowy nr "
            f"{json_field(decision, 'payment_account', '$', str)}.",
        ],
        justification=_strings(decision, "justification", required=False),
        instruction=[_appeal(decision)],
        signer=_signer(json_field(decision, "signer", "$", dict)),
    )
    return serialize_xml(build_letter(letter))


def _assessment(decision: dict[str, Any]) -> list[dict[str, Any]]:
    lines = json_field(decision, "assessment", "$", list)
    if not lines:
        raise MappingError("the assessment has no items", "$.assessment")
    parsed = []
    for index, line in enumerate(lines):
        at = f"$.assessment[{index}]"
        if not isinstance(line, dict):
            raise MappingError("expected an object", at)
        unit = json_field(line, "unit", at, str)
        if unit not in {"m2", "PLN"}:
            raise MappingError(f"unit {unit!r} is neither m2 nor PLN", f"{at}.unit")
        parsed.append(
            {
                "label": json_field(line, "label", at, str),
                "unit": unit,
                "tax_base": json_decimal(line, "tax_base", at),
                "rate": json_decimal(line, "rate", at),
                "tax": json_decimal(line, "tax", at),
            }
        )
    return parsed


def _checked_total(decision: dict[str, Any], assessment: list[dict[str, Any]]) -> Decimal:
    total = json_decimal(decision, "total_tax", "$")
    # Tax obligations are rounded to full złoty (Ordynacja podatkowa, art. 63 § 1).
    expected = sum((line["tax"] for line in assessment), Decimal(0)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    if total != expected:
        raise MappingError(
            f"total tax {total} is not the items' tax rounded to full złoty ({expected})",
            "$.total_tax",
        )
    return total


def _checked_instalments(decision: dict[str, Any], total: Decimal) -> list[tuple[Any, Decimal]]:
    entries = json_field(decision, "instalments", "$", list)
    if not entries:
        raise MappingError("no instalments", "$.instalments")
    instalments = []
    for index, entry in enumerate(entries):
        at = f"$.instalments[{index}]"
        if not isinstance(entry, dict):
            raise MappingError("expected an object", at)
        instalments.append((json_date(entry, "due", at), json_decimal(entry, "amount", at)))
    paid = sum((amount for _, amount in instalments), Decimal(0))
    if paid != total:
        raise MappingError(f"instalments add up to {paid}, not the total {total}", "$.instalments")
    return instalments


def _assessment_line(line: dict[str, Any]) -> str:
    if line["unit"] == "m2":
        base = f"{polish_number(line['tax_base'])} m²"
        rate = f"{polish_number(line['rate'])} zł/m²"
    else:
        base = polish_amount(line["tax_base"])
        rate = f"{polish_number(line['rate']).removesuffix(',00')}%"
    tax = polish_amount(line["tax"])
    return f"{line['label']}: podstawa opodatkowania {base}, stawka {rate}, podatek {tax}"


def _instalments_paragraph(instalments: list[tuple[Any, Decimal]]) -> str:
    if len(instalments) == 1:
        due, amount = instalments[0]
        # polish_date() ends with "r.", which also ends the sentence.
        return (
            f"Podatek w kwocie {polish_amount(amount)} jest płatny jednorazowo "
            f"w terminie do {polish_date(due)}"
        )
    parts = "; ".join(
        f"do {polish_date(due)} – {polish_amount(amount)}" for due, amount in instalments
    )
    return f"Podatek jest płatny w ratach: {parts}."


def _strings(decision: dict[str, Any], key: str, *, required: bool = True) -> list[str]:
    if not required and decision.get(key) is None:
        return []
    values = json_field(decision, key, "$", list)
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise MappingError("expected a non-empty string", f"$.{key}[{index}]")
    return [" ".join(value.split()) for value in values]


def _appeal(decision: dict[str, Any]) -> str:
    appeal = json_field(decision, "appeal", "$", dict)
    return appeal_instruction(
        json_field(appeal, "body", "$.appeal", str), json_field(appeal, "days", "$.appeal", int)
    )


def _json_address(value: dict[str, Any], at: str) -> Address:
    def part(key: str) -> str | None:
        member = value.get(key)
        return member if isinstance(member, str) and member else None

    return Address(
        city=json_field(value, "city", at, str),
        postal_code=part("postal_code"),
        street=part("street"),
        building=part("building"),
        unit=part("unit"),
    )


def _office(office: dict[str, Any]) -> Office:
    return Office(
        teryt=json_field(office, "teryt", "$.office", str),
        name=json_field(office, "name", "$.office", str),
        organ=json_field(office, "organ", "$.office", str),
        address=_json_address(json_field(office, "address", "$.office", dict), "$.office.address"),
    )


def _addressee(taxpayer: dict[str, Any]) -> Addressee:
    address = taxpayer.get("address")
    return Addressee(
        name=json_field(taxpayer, "name", "$.taxpayer", str),
        address=_json_address(address, "$.taxpayer.address") if isinstance(address, dict) else None,
        epuap_mailbox=taxpayer.get("epuap_mailbox") or None,
        edoreczenia_address=taxpayer.get("edoreczenia_address") or None,
    )


def _signer(signer: dict[str, Any]) -> Signer:
    return Signer(
        name=json_field(signer, "name", "$.signer", str),
        position=json_field(signer, "position", "$.signer", str),
    )


MAPPINGS = (
    Mapping(
        name="property-tax-declaration-to-tax-system",
        source_type=DECLARATION,
        source_content_type=XML,
        target_type=TAX_DECLARATION,
        target_content_type=JSON,
        translate=property_tax_declaration_to_tax_system,
        description="IN-1 / DN-1 property-tax form → tax system declaration JSON",
    ),
    Mapping(
        name="property-tax-decision-to-letter",
        source_type=TAX_DECISION,
        source_content_type=JSON,
        target_type="urn:hub:pismo:1",
        target_content_type=XML,
        translate=property_tax_decision_to_letter,
        description="tax system's property-tax decision → letter to the taxpayer",
    ),
)
