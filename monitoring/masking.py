"""Personal data (PESEL, names, addresses) masked for those who may not see it.

Viewers of the dashboard watch the traffic, not the citizens: they see that a filing
came from someone, never who. What is masked: PESEL numbers anywhere in free text
(error messages, audit details), the sender's name and address taken from the document,
the signer's name, case notes, receipt details and alert details. Of the envelope's
headers a viewer sees only those of :data:`VIEWER_HEADERS`, an allow-list: a header a
new adapter adds stays hidden from viewers until someone decides it holds no one's data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lxml import etree

from hub.errors import MalformedDocument
from hub.xml import parse_document

# A PESEL is eleven digits; masking any run of eleven digits also catches it inside text.
PESEL = re.compile(r"(?<!\d)\d{11}(?!\d)")
MASK = "•"
# Headers that say how a document travels, never who sent it or to whom: the only ones a
# viewer sees (PESEL-like numbers in them masked all the same).
VIEWER_HEADERS = frozenset(
    {
        "filename",
        "service",
        "mapped-from",
        "mapped-by",
        "forwarded-from",
        "statutory-deadline-days",
        "edoreczenia-message-id",
        "edoreczenia-attachments",
        "epuap-mailbox",
        "epuap-submitted-at",
        "epuap-test",
        "finance-kind",
        "content-type",
    }
)
HIDDEN = MASK * 3
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


def viewer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of :data:`VIEWER_HEADERS` only, with PESEL-like numbers masked."""
    return {key: mask_text(value) or "" for key, value in headers.items() if key in VIEWER_HEADERS}


def mask_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details (of a case event, a receipt, an alert) with every text hidden, counts kept.

    Numbers and flags say how much and whether; a text may quote anyone (a case note, a
    receipt's recipient, a circuit's last error), so a viewer sees only that there was one.
    """
    return {
        key: value if isinstance(value, bool | int | float) or value is None else HIDDEN
        for key, value in details.items()
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
