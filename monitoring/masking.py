"""Personal data (PESEL, names, addresses) masked for those who may not see it.

Viewers of the dashboard watch the traffic, not the citizens: they see that a filing
came from someone, never who. What is masked: PESEL numbers anywhere in free text
(error messages, audit details), the headers that carry a citizen's address, the
sender's name and address taken from the document, and the signer's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from lxml import etree

from hub.errors import MalformedDocument
from hub.xml import parse_document

# A PESEL is eleven digits; masking any run of eleven digits also catches it inside text.
PESEL = re.compile(r"(?<!\d)\d{11}(?!\d)")
MASK = "•"
# Headers whose value identifies a citizen: their ePUAP reply address, e-Doręczenia address.
PERSONAL_HEADERS = frozenset({"epuap-reply-to", "epuap-recipient", "edoreczenia-sender", "subject"})
PERSON = "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/"
ADDRESS = "http://crd.gov.pl/xml/schematy/adres/2009/11/09/"
STRUCTURE = "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/"
ADDRESS_PARTS = ("Ulica", "Budynek", "Lokal", "KodPocztowy", "Miejscowosc")


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a filing, as its form names them (CRWDE ``str:Nadawcy``)."""

    name: str = ""
    pesel: str = ""
    address: str = ""

    def masked(self) -> Sender:
        """The same sender with every part masked."""
        return replace(
            self,
            name=mask_words(self.name),
            pesel=MASK * len(self.pesel),
            address=mask_words(self.address),
        )


def mask_words(text: str) -> str:
    """Keep each word's first character: ``Zofia Zalewska`` → ``Z•••• Z•••••••``."""
    return re.sub(r"(?<=\w)\w", MASK, text)


def mask_text(text: str | None) -> str | None:
    """``text`` with every PESEL-like number masked."""
    if text is None:
        return None
    return PESEL.sub(MASK * 11, text)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with the citizen's addresses masked and PESELs hidden."""
    return {
        key: mask_words(value) if key in PERSONAL_HEADERS else (mask_text(value) or "")
        for key, value in headers.items()
    }


def sender_of(body: bytes, content_type: str) -> Sender | None:
    """The sender a CRWDE form names, or None if the body is no such form."""
    if "xml" not in content_type:
        return None
    try:
        root = parse_document(body)
    except MalformedDocument:
        return None
    senders = root.find(f".//{{{STRUCTURE}}}Nadawcy")
    if senders is None:
        return None
    first = _text(senders, PERSON, "Imie")
    last = _text(senders, PERSON, "Nazwisko")
    address = ", ".join(
        part for part in (_text(senders, ADDRESS, name) for name in ADDRESS_PARTS) if part
    )
    return Sender(f"{first} {last}".strip(), _text(senders, PERSON, "PESEL"), address)


def _text(element: etree._Element, namespace: str, name: str) -> str:
    found = element.find(f".//{{{namespace}}}{name}")
    return (found.text or "").strip() if found is not None else ""
