"""Alcohol sale permit application → permits register entry, and its decision → letter.

**alcohol-permit-application-to-register.** The portal's application
(``urn:hub:wzor:zezwolenie-alkoholowe:1``, ``schemas/zezwolenie-alkoholowe.xsd``) becomes
the register's ``alk:WpisWniosku`` (``urn:hub:legacy:alkohol:wniosek:1``). The translation
is structural, so it is XSLT (``xslt/zezwolenie-alkoholowe-do-rejestru.xsl``); Python only
validates the form and checks that the period does not end before it starts.

**alcohol-permit-decision-to-letter.** The register's decision
(``alk:Decyzja`` in ``urn:hub:legacy:alkohol:decyzja:1``, the legacy convention of
``mappings.letter`` plus the permits granted or the categories refused) becomes the
entrepreneur's letter: ``@rozstrzygniecie`` is ``wydano`` (``Zezwolenie`` elements with
``@kategoria``, ``@numer``, ``@od``, ``@do``, ``@oplata``) or ``odmowa`` (``Kategoria``
elements and an ``Uzasadnienie``).
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from mappings.base import XML, Context, Mapping
from mappings.documents import (
    SCHEMA_DIR,
    Schema,
    child_path,
    date_attribute,
    date_text,
    decimal_attribute,
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
    address_line,
    build_letter,
    list_items,
    paragraphs_of,
    polish_amount,
    polish_date,
    read_address,
    read_addressee,
    read_appeal,
    read_office,
    read_signer,
)

APPLICATION = "urn:hub:wzor:zezwolenie-alkoholowe:1"
REGISTER_ENTRY = "urn:hub:legacy:alkohol:wniosek:1"
DECISION = "urn:hub:legacy:alkohol:decyzja:1"
APPLICATION_SCHEMA = Schema(SCHEMA_DIR / "zezwolenie-alkoholowe.xsd")
TO_REGISTER = load_xslt("zezwolenie-alkoholowe-do-rejestru.xsl")

NS = {"z": APPLICATION}
_DECISION_NS = {"l": DECISION}

#: What each category covers (art. 18 ust. 3 of the act on upbringing in sobriety).
CATEGORIES = {
    "A": "do 4,5% zawartości alkoholu oraz piwo",
    "B": "powyżej 4,5% do 18% zawartości alkoholu (z wyjątkiem piwa)",
    "C": "powyżej 18% zawartości alkoholu",
}
SALE_KINDS = {
    "poza-miejscem-sprzedazy": "przeznaczonych do spożycia poza miejscem sprzedaży",
    "w-miejscu-sprzedazy": "przeznaczonych do spożycia w miejscu sprzedaży",
}
LEGAL_BASIS = (
    "art. 18 ustawy z dnia 26 października 1982 r. o wychowaniu w trzeźwości "
    "i przeciwdziałaniu alkoholizmowi",
    "art. 104 ustawy z dnia 14 czerwca 1960 r. – Kodeks postępowania administracyjnego",
)


def alcohol_permit_application_to_register(body: bytes, context: Context) -> bytes:
    """Translate an alcohol permit application into the register's entry.

    Raises:
        MappingError: not this form, invalid against its schema, or a period ending
            before it starts.
    """
    form = parse_xml(body, namespace=APPLICATION, root="Wniosek")
    APPLICATION_SCHEMA.validate(form)
    starts, ends = date_text(form, "z:Okres/z:Od", NS), date_text(form, "z:Okres/z:Do", NS)
    if ends < starts:
        raise MappingError(
            f"the period ends ({ends}) before it starts ({starts})",
            child_path(form, "z:Okres/z:Do"),
        )
    return serialize_xml(transform(TO_REGISTER, form))


def alcohol_permit_decision_to_letter(body: bytes, context: Context) -> bytes:
    """Translate the register's decision on an application into the entrepreneur's letter.

    Raises:
        MappingError: not such a decision, or a part every letter needs is missing.
    """
    decision = parse_xml(body, namespace=DECISION, root="Decyzja")
    outcome = decision.get("rozstrzygniecie")
    if outcome not in {"wydano", "odmowa"}:
        raise MappingError(
            f"rozstrzygniecie {outcome!r} is neither wydano nor odmowa",
            element_path(decision) + "/@rozstrzygniecie",
        )
    granted = outcome == "wydano"
    permits = decision.findall("l:Zezwolenie", _DECISION_NS)
    count = len(permits) if granted else len(decision.findall("l:Kategoria", _DECISION_NS))
    letter = Letter(
        kind="zezwolenie" if granted else "odmowa",
        office=read_office(decision, _DECISION_NS),
        case_reference=required_text(decision, "l:ZnakSprawy", _DECISION_NS),
        place=required_text(decision, "l:Miejscowosc", _DECISION_NS),
        issued_on=date_text(decision, "l:DataDecyzji", _DECISION_NS),
        addressee=read_addressee(decision, _DECISION_NS),
        title="DECYZJA w sprawie "
        + ("zezwolenia" if count == 1 else "zezwoleń")
        + " na sprzedaż napojów alkoholowych",
        legal_basis=LEGAL_BASIS,
        decision=_granted(decision, permits) if granted else _refused(decision),
        justification=paragraphs_of(optional_text(decision, "l:Uzasadnienie", _DECISION_NS) or ""),
        instruction=[read_appeal(decision, _DECISION_NS)],
        signer=read_signer(decision, _DECISION_NS),
    )
    return serialize_xml(build_letter(letter))


def _point_and_entrepreneur(decision: etree._Element) -> tuple[str, str]:
    """'przeznaczonych … w punkcie sprzedaży: nazwa, adres' and 'Przedsiębiorca: …, NIP …'."""
    addressee = read_addressee(decision, _DECISION_NS)
    nip = required_text(decision, "l:NIP", _DECISION_NS)
    kind = required_text(decision, "l:RodzajSprzedazy", _DECISION_NS)
    if kind not in SALE_KINDS:
        path = child_path(decision, "l:RodzajSprzedazy")
        raise MappingError(f"unknown kind of sale {kind!r}", path)
    point = required(decision, "l:Punkt", _DECISION_NS)
    name = required_text(point, "l:Nazwa", _DECISION_NS)
    address = address_line(read_address(required(point, "l:Adres", _DECISION_NS), _DECISION_NS))
    # The parties stand in their own sentence: Polish would decline them in the decision's.
    return (
        f"{SALE_KINDS[kind]} w punkcie sprzedaży: {name}, {address}",
        f"Przedsiębiorca: {addressee.name}, NIP {nip}.",
    )


def _category(element: etree._Element, value: str | None) -> str:
    if value not in CATEGORIES:
        raise MappingError(f"unknown category {value!r}", element_path(element))
    return value


def _described(category: str) -> str:
    return f"kategorii {category} ({CATEGORIES[category]})"


def _granted(decision: etree._Element, permits: list[etree._Element]) -> list[str]:
    if not permits:
        path = child_path(decision, "l:Zezwolenie")
        raise MappingError("a granted decision lists no permit", path)
    where, entrepreneur = _point_and_entrepreneur(decision)
    items, fees = [], []
    for permit in permits:
        category = _category(permit, permit.get("kategoria"))
        starts, ends = date_attribute(permit, "od"), date_attribute(permit, "do")
        items.append(
            f"zezwolenie nr {required_attribute(permit, 'numer')} na napoje alkoholowe "
            f"{_described(category)}, ważne od {polish_date(starts)} do {polish_date(ends)}"
        )
        fees.append((category, decimal_attribute(permit, "oplata")))
    total = sum((fee for _, fee in fees), Decimal(0))
    detail = "; ".join(f"kategoria {category}: {polish_amount(fee)}" for category, fee in fees)
    return [
        f"Zezwalam na sprzedaż napojów alkoholowych {where}.",
        entrepreneur,
        "Wydane zezwolenia:",
        *list_items(items),
        f"Opłata za korzystanie z zezwoleń w pierwszym roku wynosi {polish_amount(total)} "
        f"({detail}) i jest wnoszona przed wydaniem zezwoleń.",
    ]


def _refused(decision: etree._Element) -> list[str]:
    categories = [
        _category(element, (element.text or "").strip())
        for element in decision.findall("l:Kategoria", _DECISION_NS)
    ]
    if not categories:
        raise MappingError("a refusal names no category", child_path(decision, "l:Kategoria"))
    where, entrepreneur = _point_and_entrepreneur(decision)
    noun = "zezwolenia" if len(categories) == 1 else "zezwoleń"
    scope = ", ".join(_described(category) for category in categories)
    return [
        f"Odmawiam wydania {noun} na sprzedaż napojów alkoholowych {scope} {where}.",
        entrepreneur,
    ]


MAPPINGS = (
    Mapping(
        name="alcohol-permit-application-to-register",
        source_type=APPLICATION,
        source_content_type=XML,
        target_type=REGISTER_ENTRY,
        target_content_type=XML,
        translate=alcohol_permit_application_to_register,
        description="alcohol sale permit application → alcohol permits register entry",
    ),
    Mapping(
        name="alcohol-permit-decision-to-letter",
        source_type=DECISION,
        source_content_type=XML,
        target_type="urn:hub:pismo:1",
        target_content_type=XML,
        translate=alcohol_permit_decision_to_letter,
        description="alcohol permits register's decision → letter to the entrepreneur",
    ),
)
