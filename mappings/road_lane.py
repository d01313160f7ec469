"""Road-lane occupation application → roads register record, and its decision → letter.

**road-lane-application-to-register.** The portal's application
(``urn:hub:wzor:zajecie-pasa-drogowego:1``, ``schemas/zajecie-pasa-drogowego.xsd``) becomes
the roads register's ``drg:WniosekZajecie`` (``urn:hub:legacy:drogi:wniosek:1``) through
``xslt/zajecie-pasa-do-rejestru.xsl``: codes for purpose, road category and element, each
section as filed, the area per road element and in total, and the days of occupation.
Python validates the form and checks the period's order first.

**road-lane-decision-to-letter.** The register's decision (``drg:Decyzja`` in
``urn:hub:legacy:drogi:decyzja:1``, the legacy convention of ``mappings.letter``) becomes
the applicant's letter. ``@rozstrzygniecie`` is ``zezwolenie`` (with ``Oplata``: one
``Pozycja`` per element with ``@element``, ``@m2``, ``@dni``, ``@stawka`` in zł per m² per
day and ``@kwota``, then ``Razem``, ``Termin``, ``Rachunek``; and ``Warunek`` elements) or
``odmowa`` (with an ``Uzasadnienie``). Each fee line must be area × days × rate and the
total their sum (art. 40 ust. 4 of the act on public roads), or the mapping refuses.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from mappings.base import XML, Context, Mapping
from mappings.documents import (
    SCHEMA_DIR,
    Schema,
    child_path,
    date_attribute,
    date_text,
    decimal_attribute,
    decimal_text,
    element_path,
    load_xslt,
    optional_text,
    parse_xml,
    required,
    required_attribute,
    required_text,
    serialize_xml,
    transform,
)
from mappings.errors import MappingError
from mappings.letter import (
    Letter,
    build_letter,
    list_items,
    paragraphs_of,
    polish_amount,
    polish_date,
    polish_number,
    read_addressee,
    read_appeal,
    read_office,
    read_signer,
    sentence,
)

APPLICATION = "urn:hub:wzor:zajecie-pasa-drogowego:1"
REGISTER_RECORD = "urn:hub:legacy:drogi:wniosek:1"
DECISION = "urn:hub:legacy:drogi:decyzja:1"
APPLICATION_SCHEMA = Schema(SCHEMA_DIR / "zajecie-pasa-drogowego.xsd")
TO_REGISTER = load_xslt("zajecie-pasa-do-rejestru.xsl")

NS = {"w": APPLICATION}
_DECISION_NS = {"l": DECISION}

ROAD_CATEGORY_GENITIVE = {
    "krajowa": "krajowej",
    "wojewodzka": "wojewódzkiej",
    "powiatowa": "powiatowej",
    "gminna": "gminnej",
}
ELEMENTS = {
    "jezdnia": "jezdnia",
    "chodnik": "chodnik",
    "pobocze": "pobocze",
    "zielen": "pas zieleni",
    "sciezka-rowerowa": "ścieżka rowerowa",
    "inne": "inne elementy pasa drogowego",
}
LEGAL_BASIS = (
    "art. 40 ust. 1, 2 i 4 ustawy z dnia 21 marca 1985 r. o drogach publicznych",
    "art. 104 ustawy z dnia 14 czerwca 1960 r. – Kodeks postępowania administracyjnego",
)
CENT = Decimal("0.01")


def road_lane_application_to_register(body: bytes, context: Context) -> bytes:
    """Translate a road-lane occupation application into the roads register's record.

    Raises:
        MappingError: not this form, invalid against its schema, or a period ending
            before it starts.
    """
    form = parse_xml(body, namespace=APPLICATION, root="Wniosek")
    APPLICATION_SCHEMA.validate(form)
    starts, ends = date_text(form, "w:Termin/w:Od", NS), date_text(form, "w:Termin/w:Do", NS)
    if ends < starts:
        path = child_path(form, "w:Termin/w:Do")
        raise MappingError(f"the occupation ends ({ends}) before it starts ({starts})", path)
    return serialize_xml(transform(TO_REGISTER, form))


def road_lane_decision_to_letter(body: bytes, context: Context) -> bytes:
    """Translate the roads register's decision into the applicant's letter.

    Raises:
        MappingError: not such a decision, a part every letter needs is missing, or the
            fee lines do not add up.
    """
    decision = parse_xml(body, namespace=DECISION, root="Decyzja")
    outcome = decision.get("rozstrzygniecie")
    if outcome not in {"zezwolenie", "odmowa"}:
        path = element_path(decision) + "/@rozstrzygniecie"
        raise MappingError(f"rozstrzygniecie {outcome!r} is neither zezwolenie nor odmowa", path)
    granted = outcome == "zezwolenie"
    letter = Letter(
        kind="zezwolenie" if granted else "odmowa",
        office=read_office(decision, _DECISION_NS),
        case_reference=required_text(decision, "l:ZnakSprawy", _DECISION_NS),
        place=required_text(decision, "l:Miejscowosc", _DECISION_NS),
        issued_on=date_text(decision, "l:DataDecyzji", _DECISION_NS),
        addressee=read_addressee(decision, _DECISION_NS),
        title="DECYZJA w sprawie zezwolenia na zajęcie pasa drogowego",
        legal_basis=LEGAL_BASIS,
        decision=_granted(decision) if granted else _refused(decision),
        justification=paragraphs_of(optional_text(decision, "l:Uzasadnienie", _DECISION_NS) or ""),
        instruction=[read_appeal(decision, _DECISION_NS)],
        signer=read_signer(decision, _DECISION_NS),
    )
    return serialize_xml(build_letter(letter))


def _road(decision: etree._Element) -> str:
    """'drogi powiatowej nr 3110W (ul. Pruszkowska)'."""
    road = required(decision, "l:Droga", _DECISION_NS)
    category = required_attribute(road, "kategoria")
    if category not in ROAD_CATEGORY_GENITIVE:
        raise MappingError(
            f"unknown road category {category!r}", element_path(road) + "/@kategoria"
        )
    name = " ".join((road.text or "").split())
    number = required_attribute(road, "numer")
    described = f"drogi {ROAD_CATEGORY_GENITIVE[category]} nr {number}"
    return f"{described} ({name})" if name else described


def _period(decision: etree._Element) -> str:
    period = required(decision, "l:Okres", _DECISION_NS)
    starts, ends = date_attribute(period, "od"), date_attribute(period, "do")
    return f"od {polish_date(starts)} do {polish_date(ends)}"


def _granted(decision: etree._Element) -> list[str]:
    purpose = required_text(decision, "l:Cel", _DECISION_NS)
    fee = required(decision, "l:Oplata", _DECISION_NS)
    lines, total = _fee_lines(fee)
    due = date_text(fee, "l:Termin", _DECISION_NS)
    account = required_text(fee, "l:Rachunek", _DECISION_NS)
    conditions = [
        " ".join((c.text or "").split()) for c in decision.findall("l:Warunek", _DECISION_NS)
    ]
    paragraphs = [
        sentence(
            f"Zezwalam na zajęcie pasa drogowego {_road(decision)} w celu: {purpose}, "
            f"na okres {_period(decision)}"
        ),
        f"Ustalam opłatę za zajęcie pasa drogowego w wysokości {polish_amount(total)}, "
        "obliczoną jako iloczyn powierzchni, liczby dni i stawki:",
        *list_items(lines),
        f"Opłatę należy wnieść w terminie do {polish_date(due)} na rachunek bankowy nr {account}.",
    ]
    if any(conditions):
        paragraphs += ["Zajęcie pasa drogowego następuje na warunkach:", *list_items(conditions)]
    return paragraphs


def _fee_lines(fee: etree._Element) -> tuple[list[str], Decimal]:
    lines, computed = [], Decimal(0)
    items = fee.findall("l:Pozycja", _DECISION_NS)
    if not items:
        raise MappingError("the fee has no items", child_path(fee, "l:Pozycja"))
    for item in items:
        element = required_attribute(item, "element")
        if element not in ELEMENTS:
            raise MappingError(
                f"unknown road element {element!r}", element_path(item) + "/@element"
            )
        area, days = decimal_attribute(item, "m2"), decimal_attribute(item, "dni")
        rate, amount = decimal_attribute(item, "stawka"), decimal_attribute(item, "kwota")
        expected = (area * days * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        if amount != expected:
            path = element_path(item) + "/@kwota"
            raise MappingError(f"{amount} is not area × days × rate ({expected})", path)
        computed += amount
        lines.append(
            f"{ELEMENTS[element]}: {polish_number(area)} m² × {days} dni × "
            f"{polish_number(rate)} zł = {polish_amount(amount)}"
        )
    total = decimal_text(fee, "l:Razem", _DECISION_NS)
    if total != computed:
        raise MappingError(
            f"the total {total} is not the sum of the items ({computed})",
            child_path(fee, "l:Razem"),
        )
    return lines, total


def _refused(decision: etree._Element) -> list[str]:
    purpose = required_text(decision, "l:Cel", _DECISION_NS)
    required_text(decision, "l:Uzasadnienie", _DECISION_NS)  # a refusal must say why
    return [
        sentence(
            f"Odmawiam zezwolenia na zajęcie pasa drogowego {_road(decision)} w celu: {purpose}, "
            f"na okres {_period(decision)}"
        )
    ]


MAPPINGS = (
    Mapping(
        name="road-lane-application-to-register",
        source_type=APPLICATION,
        source_content_type=XML,
        target_type=REGISTER_RECORD,
        target_content_type=XML,
        translate=road_lane_application_to_register,
        description="road-lane occupation application → roads register record",
    ),
    Mapping(
        name="road-lane-decision-to-letter",
        source_type=DECISION,
        source_content_type=XML,
        target_type="urn:hub:pismo:1",
        target_content_type=XML,
        translate=road_lane_decision_to_letter,
        description="roads register's decision → letter to the applicant",
    ),
)
