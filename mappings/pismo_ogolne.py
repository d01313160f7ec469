"""Pismo ogólne (ePUAP form 1410) → EOD registration record, and the EOD's reply → letter.

**pismo-ogolne-to-eod.** The CRD form "Pismo ogólne do podmiotu publicznego"
(``http://crd.gov.pl/wzor/2013/12/12/1410/``) becomes the record the office's EOD
(electronic document management) registers: ``eod:RejestracjaPisma`` in
``urn:hub:legacy:eod:rejestracja:1``. Python, not XSLT, because attachments are decoded
to record their size and SHA-256, and the JRWA class is chosen from the subject.

Context keys read (the envelope's headers, as the ePUAP inbound adapters write them):
``epuap-mailbox`` (the office's skrytka the form was sent to), ``epuap-reply-to`` (the
sender's), ``epuap-submitted-at`` (the received date; absent, the form's own date is used),
``epuap-document-id``, ``epuap-test``, ``filename``, ``envelope-id`` (the hub's id), and
``jrwa`` (a JRWA symbol that overrides the choice from the subject).

**eod-reply-to-letter.** The EOD's answer (``eod:Odpowiedz`` in
``urn:hub:legacy:eod:odpowiedz:1``, the legacy convention of ``mappings.letter``) becomes
the citizen's letter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from lxml import etree

from mappings.base import XML, Context, Mapping
from mappings.documents import (
    date_text,
    element_path,
    optional_text,
    parse_xml,
    required,
    required_text,
    serialize_xml,
)
from mappings.errors import MappingError
from mappings.letter import (
    Letter,
    build_letter,
    paragraphs_of,
    read_addressee,
    read_office,
    read_signer,
)

PISMO_OGOLNE = "http://crd.gov.pl/wzor/2013/12/12/1410/"
EOD_REGISTRATION = "urn:hub:legacy:eod:rejestracja:1"
EOD_REPLY = "urn:hub:legacy:eod:odpowiedz:1"

NS = {
    "wnio": PISMO_OGOLNE,
    "meta": "http://crd.gov.pl/xml/schematy/meta/2009/11/16/",
    "str": "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/",
    "adr": "http://crd.gov.pl/xml/schematy/adres/2009/11/09/",
    "oso": "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/",
    "inst": "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
_REPLY_NS = {"l": EOD_REPLY}

#: JRWA (Jednolity Rzeczowy Wykaz Akt, the filing plan) symbols chosen from the subject,
#: first match wins. Only topics whose class is unambiguous are listed; anything else is
#: left to the registry clerk (no KlasaJRWA), and an office may pass its own in ``jrwa``.
JRWA_BY_SUBJECT: tuple[tuple[str, str], ...] = (
    ("informacji publicznej", "1431"),
    ("skarga", "1510"),
    ("petycja", "1520"),
)

_ADDRESS_FIELDS = ("Ulica", "Budynek", "Lokal", "KodPocztowy", "Miejscowosc", "Poczta")


def pismo_ogolne_to_eod(body: bytes, context: Context) -> bytes:
    """Translate a pismo ogólne into an EOD registration record.

    Raises:
        MappingError: not a pismo ogólne, or a required part (sender, title) is missing.
    """
    form = parse_xml(body, namespace=PISMO_OGOLNE, root="Dokument")
    record = etree.Element(_eod("RejestracjaPisma"), nsmap={"eod": EOD_REGISTRATION})
    _text(record, "Wzor", PISMO_OGOLNE)
    _text(record, "NazwaDokumentu", _document_name(form))
    _add_jrwa(record, form, context)
    _add_dates(record, form, context)
    _add_epuap(record, context)
    _add_sender(record, required(form, "wnio:DaneDokumentu/str:Nadawcy/meta:Podmiot", NS))
    _add_addressee(record, form)
    _add_content(record, required(form, "wnio:TrescDokumentu/wnio:Wartosc", NS))
    _add_attachments(record, form)
    signatures = form.findall(".//ds:Signature", NS)
    _text(record, "Podpisany", "true" if signatures else "false")
    return serialize_xml(record)


def eod_reply_to_letter(body: bytes, context: Context) -> bytes:
    """Translate the EOD's reply into the citizen's letter (``urn:hub:pismo:1``).

    Raises:
        MappingError: not an EOD reply, or a part every letter needs is missing.
    """
    reply = parse_xml(body, namespace=EOD_REPLY, root="Odpowiedz")
    written_on = date_text(reply, "l:DataPisma", _REPLY_NS)
    basis = [
        " ".join((item.text or "").split()) for item in reply.findall("l:PodstawaPrawna", _REPLY_NS)
    ]
    letter = Letter(
        kind="decyzja" if optional_text(reply, "l:Rodzaj", _REPLY_NS) == "decyzja" else "odpowiedz",
        office=read_office(reply, _REPLY_NS),
        case_reference=required_text(reply, "l:ZnakSprawy", _REPLY_NS),
        place=required_text(reply, "l:Miejscowosc", _REPLY_NS),
        issued_on=written_on,
        addressee=read_addressee(reply, _REPLY_NS),
        title=required_text(reply, "l:Tytul", _REPLY_NS),
        legal_basis=[text for text in basis if text],
        decision=paragraphs_of(required_text(reply, "l:Tresc", _REPLY_NS)),
        instruction=paragraphs_of(optional_text(reply, "l:Pouczenie", _REPLY_NS) or ""),
        signer=read_signer(reply, _REPLY_NS),
    )
    return serialize_xml(build_letter(letter))


MAPPINGS = (
    Mapping(
        name="pismo-ogolne-to-eod",
        source_type=PISMO_OGOLNE,
        source_content_type=XML,
        target_type=EOD_REGISTRATION,
        target_content_type=XML,
        translate=pismo_ogolne_to_eod,
        description="ePUAP pismo ogólne → EOD registration record",
    ),
    Mapping(
        name="eod-reply-to-letter",
        source_type=EOD_REPLY,
        source_content_type=XML,
        target_type="urn:hub:pismo:1",
        target_content_type=XML,
        translate=eod_reply_to_letter,
        description="EOD reply → letter to the citizen",
    ),
)


# --- the registration record, part by part ------------------------------------------------


def _eod(local: str) -> str:
    return f"{{{EOD_REGISTRATION}}}{local}"


def _text(parent: etree._Element, local: str, text: str) -> etree._Element:
    child = etree.SubElement(parent, _eod(local))
    child.text = text
    return child


def _document_name(form: etree._Element) -> str:
    path = "wnio:DaneDokumentu/str:Naglowek/str:NazwaDokumentu"
    return optional_text(form, path, NS) or "Pismo ogólne do podmiotu publicznego"


def _title(form: etree._Element) -> str:
    return required_text(form, "wnio:TrescDokumentu/wnio:Wartosc/wnio:Tytul", NS)


def _add_jrwa(record: etree._Element, form: etree._Element, context: Context) -> None:
    if context.get("jrwa"):
        _text(record, "KlasaJRWA", context["jrwa"]).set("zrodlo", "urzad")
        return
    subject = _title(form).lower()
    for keyword, symbol in JRWA_BY_SUBJECT:
        if keyword in subject:
            _text(record, "KlasaJRWA", symbol).set("zrodlo", "tytul")
            return


def _add_dates(record: etree._Element, form: etree._Element, context: Context) -> None:
    written = form.find("wnio:OpisDokumentu/meta:Data", NS)
    written_on = (written.text or "").strip() if written is not None else ""
    received = context.get("epuap-submitted-at") or written_on
    if not received:
        raise MappingError(
            "no received date: neither epuap-submitted-at nor the form's date",
            element_path(form) + "/OpisDokumentu/Data",
        )
    _text(record, "DataWplywu", received)
    if written_on:
        _text(record, "DataPisma", written_on)


def _add_epuap(record: etree._Element, context: Context) -> None:
    fields = (
        ("IdentyfikatorDokumentu", "epuap-document-id"),
        ("SkrytkaAdresata", "epuap-mailbox"),
        ("AdresOdpowiedzi", "epuap-reply-to"),
        ("NazwaPliku", "filename"),
        ("IdentyfikatorWHubie", "envelope-id"),
    )
    present = [(local, context[key]) for local, key in fields if context.get(key)]
    if not present:
        return
    epuap = etree.SubElement(record, _eod("Epuap"))
    epuap.set("testowy", "true" if context.get("epuap-test") == "true" else "false")
    for local, value in present:
        _text(epuap, local, value)


def _add_sender(record: etree._Element, podmiot: etree._Element) -> None:
    sender = etree.SubElement(record, _eod("Nadawca"))
    person = podmiot.find("oso:Osoba", NS)
    if person is not None:
        sender.set("rodzaj", "osoba")
        _text(sender, "Imie", required_text(person, "oso:Imie", NS))
        _text(sender, "Nazwisko", required_text(person, "oso:Nazwisko", NS))
        pesel = optional_text(person, "oso:IdOsoby/oso:PESEL", NS)
        if pesel:
            _text(sender, "PESEL", pesel)
    else:
        institution = podmiot.find("inst:Instytucja", NS)
        if institution is None:
            raise MappingError(
                "the sender is neither a person nor an institution", element_path(podmiot)
            )
        sender.set("rodzaj", "instytucja")
        _text(sender, "Nazwa", required_text(institution, "inst:NazwaInstytucji", NS))
    address = podmiot.find("adr:Adres", NS)
    if address is None and person is None:
        address = podmiot.find("inst:Instytucja/adr:Adres", NS)
    if address is not None:
        _add_address(sender, address)


def _add_address(parent: etree._Element, address: etree._Element) -> None:
    target = etree.SubElement(parent, _eod("Adres"))
    for local in _ADDRESS_FIELDS:
        value = optional_text(address, f"adr:{local}", NS)
        if value:
            _text(target, local, value)


def _add_addressee(record: etree._Element, form: etree._Element) -> None:
    path = "wnio:DaneDokumentu/str:Adresaci/meta:Podmiot/inst:Instytucja/inst:NazwaInstytucji"
    name = optional_text(form, path, NS)
    if name:
        _text(record, "Adresat", name)


def _add_content(record: etree._Element, value: etree._Element) -> None:
    _text(record, "Tytul", required_text(value, "wnio:Tytul", NS))
    place = optional_text(value, "wnio:MiejscowoscDokumentu", NS)
    if place:
        _text(record, "Miejscowosc", place)
    text = optional_text(value, "wnio:Tresc", NS)
    if text:
        _text(record, "Tresc", text)


def _add_attachments(record: etree._Element, form: etree._Element) -> None:
    found = form.findall("str:Zalaczniki/str:Zalacznik", NS)
    attachments = etree.SubElement(record, _eod("Zalaczniki"))
    attachments.set("liczba", str(len(found)))
    for number, attachment in enumerate(found, start=1):
        entry = etree.SubElement(attachments, _eod("Zalacznik"))
        entry.set("lp", str(number))
        _text(entry, "Nazwa", attachment.get("nazwaPliku") or f"zalacznik-{number}")
        _text(entry, "TypMIME", attachment.get("format") or "application/octet-stream")
        content = _attachment_bytes(attachment)
        if content is not None:
            _text(entry, "Rozmiar", str(len(content)))
            _text(entry, "SHA256", hashlib.sha256(content).hexdigest())


def _attachment_bytes(attachment: etree._Element) -> bytes | None:
    """The attachment's decoded content; None when it travels by reference only."""
    data = attachment.find("str:DaneZalacznika", NS)
    if data is None:
        return None
    text = "".join((data.text or "").split())
    encoding = (attachment.get("kodowanie") or "base64").lower()
    if encoding != "base64":
        raise MappingError(
            f"attachment encoding {encoding!r} is not base64", element_path(attachment)
        )
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise MappingError(f"attachment is not valid base64: {exc}", element_path(data)) from exc
