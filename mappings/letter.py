"""The letter to the citizen (``urn:hub:pismo:1``) that every domain decision becomes.

Each domain system (EOD, tax, alcohol permits, roads) answers in its own format; its
``*-to-letter`` mapping reads what matters into a ``Letter`` and ``build_letter`` writes
one document shape for all of them, checked against ``schemas/pismo.xsd``. The hub signs
the letter (XAdES, with the office's key) in a later route step: nothing here signs.

Legacy XML decisions share one convention for the parts every letter needs, each in the
system's own namespace: ``Urzad`` (``@teryt``, ``Nazwa``, ``Organ``, ``Adres``),
``ZnakSprawy``, ``Adresat`` (``Imie`` + ``Nazwisko`` or ``Nazwa``, ``Adres``,
``SkrytkaEpuap``, ``AdresDoDoreczen``), ``Podpisal`` (``ImieNazwisko``, ``Stanowisko``);
``Adres`` is ``Ulica``, ``Budynek``, ``Lokal``, ``KodPocztowy``, ``Miejscowosc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

from mappings.documents import (
    SCHEMA_DIR,
    Schema,
    element_path,
    optional_text,
    required,
    required_attribute,
    required_text,
)
from mappings.errors import MappingError

LETTER_NS = "urn:hub:pismo:1"
LETTER_SCHEMA = Schema(SCHEMA_DIR / "pismo.xsd")

_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")
_MONTHS_GENITIVE = (
    "stycznia",
    "lutego",
    "marca",
    "kwietnia",
    "maja",
    "czerwca",
    "lipca",
    "sierpnia",
    "września",
    "października",
    "listopada",
    "grudnia",
)


@dataclass(frozen=True, slots=True)
class Address:
    """A Polish postal address."""

    city: str
    postal_code: str | None = None
    street: str | None = None
    building: str | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Office:
    """The office writing the letter: TERYT id, name, the organ that decides, its address."""

    teryt: str
    name: str
    organ: str
    address: Address


@dataclass(frozen=True, slots=True)
class Addressee:
    """Whom the letter is for, and where it can be delivered electronically."""

    name: str
    address: Address | None = None
    epuap_mailbox: str | None = None
    edoreczenia_address: str | None = None


@dataclass(frozen=True, slots=True)
class Signer:
    """The official who signs, by name and position."""

    name: str
    position: str


@dataclass(frozen=True, slots=True)
class Letter:
    """Everything a letter says, in the order it says it."""

    kind: str
    office: Office
    case_reference: str
    place: str
    issued_on: date
    addressee: Addressee
    title: str
    decision: Sequence[str]
    signer: Signer
    legal_basis: Sequence[str] = ()
    justification: Sequence[str] = ()
    instruction: Sequence[str] = ()


def build_letter(letter: Letter) -> etree._Element:
    """Write ``letter`` as a ``urn:hub:pismo:1`` document.

    Raises:
        MappingError: the result breaks ``pismo.xsd`` (a field was empty or too long).
    """
    root = etree.Element(_q("Pismo"), nsmap={"p": LETTER_NS})
    root.set("rodzaj", letter.kind)
    _add_office(root, letter.office)
    _text(root, "ZnakSprawy", letter.case_reference)
    place = etree.SubElement(root, _q("MiejsceIData"))
    _text(place, "Miejscowosc", letter.place)
    _text(place, "Data", letter.issued_on.isoformat())
    _add_addressee(root, letter.addressee)
    _text(root, "Tytul", letter.title)
    _paragraphs(root, "PodstawaPrawna", letter.legal_basis, "Przepis")
    _paragraphs(root, "Rozstrzygniecie", letter.decision)
    _paragraphs(root, "Uzasadnienie", letter.justification)
    _paragraphs(root, "Pouczenie", letter.instruction)
    signature = etree.SubElement(root, _q("Podpis"))
    _text(signature, "ImieNazwisko", letter.signer.name)
    _text(signature, "Stanowisko", letter.signer.position)
    LETTER_SCHEMA.validate(root)
    return root


def appeal_instruction(appeal_body: str, days: int, subject: str = "decyzji") -> str:
    """The standard sentence on where and by when the addressee may appeal."""
    return (
        f"Od niniejszej {subject} służy odwołanie do {appeal_body}, wnoszone za "
        f"pośrednictwem organu, który ją wydał, w terminie {days} dni od dnia jej doręczenia."
    )


def polish_date(day: date) -> str:
    """``2 kwietnia 2025 r.``: how a Polish letter writes a date."""
    return f"{day.day} {_MONTHS_GENITIVE[day.month - 1]} {day.year} r."


def polish_number(number: Decimal) -> str:
    """``1 234,50``: thousands apart, a decimal comma, two decimals."""
    whole, _, fraction = f"{number.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}".partition(
        "."
    )
    return f"{whole.replace(',', ' ')},{fraction}"


def polish_amount(amount: Decimal) -> str:
    """``1 234,50 zł``: an amount of money as a Polish letter writes it."""
    return f"{polish_number(amount)} zł"


def address_line(address: Address) -> str:
    """``Grójecka 17/24, 02-021 Warszawa``: an address on one line (no street: the town)."""
    number = address.building or ""
    if address.unit:
        number += f"/{address.unit}"
    street = " ".join(part for part in (address.street or address.city, number) if part)
    town = " ".join(part for part in (address.postal_code, address.city) if part)
    return f"{street}, {town}"


def sentence(text: str) -> str:
    """``text`` ending with one full stop (a closing "r." of a date already is one)."""
    return text if text.endswith(".") else f"{text}."


def list_items(items: Sequence[str]) -> list[str]:
    """Items of an enumeration: each ends with ";", the last with "." (once)."""
    ended = [f"{_without_full_stop(item)};" for item in items[:-1]]
    return [*ended, sentence(items[-1])] if items else []


def _without_full_stop(text: str) -> str:
    # "2025 r." keeps its abbreviation's stop; a sentence's own stop gives way to ";".
    return text[:-1] if text.endswith(".") and not text.endswith(" r.") else text


def paragraphs_of(text: str) -> list[str]:
    """Split a legacy text field into paragraphs at blank lines, whitespace collapsed."""
    blocks = (" ".join(block.split()) for block in _BLANK_LINE.split(text))
    return [block for block in blocks if block]


# --- the shared legacy convention ---------------------------------------------------------


def read_address(element: etree._Element, ns: Mapping[str, str]) -> Address:
    """An ``Adres`` of the legacy convention (prefix ``l``)."""
    return Address(
        city=required_text(element, "l:Miejscowosc", ns),
        postal_code=optional_text(element, "l:KodPocztowy", ns),
        street=optional_text(element, "l:Ulica", ns),
        building=optional_text(element, "l:Budynek", ns),
        unit=optional_text(element, "l:Lokal", ns),
    )


def read_office(decision: etree._Element, ns: Mapping[str, str]) -> Office:
    """The ``Urzad`` of a legacy decision."""
    office = required(decision, "l:Urzad", ns)
    teryt = (office.get("teryt") or "").strip()
    if not teryt:
        raise MappingError("the office has no TERYT id", element_path(office) + "/@teryt")
    return Office(
        teryt=teryt,
        name=required_text(office, "l:Nazwa", ns),
        organ=required_text(office, "l:Organ", ns),
        address=read_address(required(office, "l:Adres", ns), ns),
    )


def read_addressee(decision: etree._Element, ns: Mapping[str, str]) -> Addressee:
    """The ``Adresat`` of a legacy decision: a person (Imie, Nazwisko) or a body (Nazwa)."""
    addressee = required(decision, "l:Adresat", ns)
    name = optional_text(addressee, "l:Nazwa", ns)
    if name is None:
        first = required_text(addressee, "l:Imie", ns)
        name = f"{first} {required_text(addressee, 'l:Nazwisko', ns)}"
    address = addressee.find("l:Adres", ns)
    return Addressee(
        name=name,
        address=None if address is None else read_address(address, ns),
        epuap_mailbox=optional_text(addressee, "l:SkrytkaEpuap", ns),
        edoreczenia_address=optional_text(addressee, "l:AdresDoDoreczen", ns),
    )


def read_appeal(decision: etree._Element, ns: Mapping[str, str]) -> str:
    """The appeal instruction from an ``Odwolanie`` with ``@organ`` and ``@dni``."""
    appeal = required(decision, "l:Odwolanie", ns)
    days = required_attribute(appeal, "dni")
    if not days.isdigit():
        raise MappingError(f"{days!r} is not a number of days", element_path(appeal) + "/@dni")
    return appeal_instruction(required_attribute(appeal, "organ"), int(days))


def read_signer(decision: etree._Element, ns: Mapping[str, str]) -> Signer:
    """The ``Podpisal`` of a legacy decision."""
    signer = required(decision, "l:Podpisal", ns)
    return Signer(
        name=required_text(signer, "l:ImieNazwisko", ns),
        position=required_text(signer, "l:Stanowisko", ns),
    )


# --- writing ------------------------------------------------------------------------------


def _q(local: str) -> str:
    return f"{{{LETTER_NS}}}{local}"


def _text(parent: etree._Element, local: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, _q(local))
    child.text = text
    return child


def _paragraphs(
    parent: etree._Element, local: str, texts: Sequence[str], item: str = "Akapit"
) -> None:
    if not texts:
        return
    section = etree.SubElement(parent, _q(local))
    for text in texts:
        _text(section, item, text)


def _add_address(parent: etree._Element, address: Address) -> None:
    element = etree.SubElement(parent, _q("Adres"))
    for local, value in (
        ("Ulica", address.street),
        ("Budynek", address.building),
        ("Lokal", address.unit),
        ("KodPocztowy", address.postal_code),
        ("Miejscowosc", address.city),
    ):
        if value is not None:
            _text(element, local, value)


def _add_office(root: etree._Element, office: Office) -> None:
    sender = etree.SubElement(root, _q("Nadawca"))
    sender.set("teryt", office.teryt)
    _text(sender, "Urzad", office.name)
    _text(sender, "Organ", office.organ)
    _add_address(sender, office.address)


def _add_addressee(root: etree._Element, addressee: Addressee) -> None:
    element = etree.SubElement(root, _q("Adresat"))
    _text(element, "Nazwa", addressee.name)
    if addressee.address is not None:
        _add_address(element, addressee.address)
    if addressee.epuap_mailbox is not None:
        _text(element, "AdresElektroniczny", addressee.epuap_mailbox).set("rodzaj", "epuap")
    if addressee.edoreczenia_address is not None:
        ade = _text(element, "AdresElektroniczny", addressee.edoreczenia_address)
        ade.set("rodzaj", "e-doreczenia")
