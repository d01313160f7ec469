"""The pismo ogólne generator: structure, determinism, PESELs, attachments, speed."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
from datetime import UTC, date, datetime

import pytest
from lxml import etree

from simulators.epuap.documents import (
    NS,
    GeneratedDocument,
    generate_pesel,
    generate_pismo_ogolne,
    pesel_check_digit,
    sha1_b64,
)

RADOM = {"office_name": "Urząd Miejski w Radomiu", "office_teryt": "1463011"}
SENT_AT = datetime(2024, 5, 6, 10, 30, tzinfo=UTC)


def _generate(seed: int = 7, **overrides) -> GeneratedDocument:
    kwargs = {**RADOM, "sent_at": SENT_AT, **overrides}
    return generate_pismo_ogolne(random.Random(seed), **kwargs)


def _parse(content: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(content, parser)


def _text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path} matched {len(found)} nodes"
    return found[0].text


def _independent_pesel_ok(pesel: str) -> bool:
    """Check a PESEL without using the module's helpers."""
    if not re.fullmatch(r"\d{11}", pesel):
        return False
    weights = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3]
    total = sum(int(pesel[i]) * weights[i] for i in range(10))
    return (10 - total % 10) % 10 == int(pesel[10])


def _pesel_birth_date(pesel: str) -> date:
    year, month, day = int(pesel[0:2]), int(pesel[2:4]), int(pesel[4:6])
    for offset, century in ((80, 1800), (60, 2200), (40, 2100), (20, 2000), (0, 1900)):
        if month > offset:
            return date(century + year, month - offset, day)
    raise AssertionError(f"bad month field in {pesel}")


def test_sha1_b64_matches_known_vector():
    # SHA-1("abc") = a9993e36...d89d, the FIPS 180 test vector.
    assert sha1_b64(b"abc") == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0="
    content = _generate().content
    assert sha1_b64(content) == base64.b64encode(hashlib.sha1(content).digest()).decode()


def test_pesel_check_digit_of_textbook_example():
    assert pesel_check_digit("4405140135") == 9


@pytest.mark.parametrize(
    ("birth", "female", "prefix"),
    [
        (date(1985, 7, 3), False, "850703"),
        (date(2003, 11, 30), True, "033130"),
        (date(1899, 1, 9), True, "998109"),
    ],
)
def test_generate_pesel_encodes_birth_date_and_sex(birth, female, prefix):
    pesel = generate_pesel(random.Random(1), birth, female=female)
    assert pesel.startswith(prefix)
    assert _independent_pesel_ok(pesel)
    assert int(pesel[9]) % 2 == (0 if female else 1)


def test_same_seed_same_document_and_different_seed_different_document():
    assert _generate(3) == _generate(3)
    assert _generate(3).content != _generate(4).content


def test_document_follows_the_crwde_shape():
    doc = _generate(attachments=1)
    assert doc.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = _parse(doc.content)

    assert root.tag == "{http://crd.gov.pl/wzor/2013/12/12/1410/}Dokument"
    assert root.prefix == "wnio"
    data = root.xpath("wnio:OpisDokumentu/meta:Data", namespaces=NS)[0]
    assert data.get("typDaty") == "utworzony"
    assert data.text == "2024-05-06"

    dane = "wnio:DaneDokumentu"
    assert _text(root, f"{dane}/str:Naglowek/str:NazwaDokumentu") == (
        "Pismo ogólne do podmiotu publicznego"
    )
    office = f"{dane}/str:Adresaci/meta:Podmiot/inst:Instytucja"
    assert _text(root, f"{office}/inst:NazwaInstytucji") == "Urząd Miejski w Radomiu"
    assert _text(root, f"{office}/adr:Adres/adr:Miejscowosc") == "Radom"

    sender = f"{dane}/str:Nadawcy/meta:Podmiot"
    assert _text(root, f"{sender}/oso:Osoba/oso:IdOsoby/oso:PESEL") == doc.sender_pesel
    assert _text(root, f"{sender}/oso:Osoba/oso:Imie") == doc.sender_first_name
    assert _text(root, f"{sender}/oso:Osoba/oso:Nazwisko") == doc.sender_last_name
    assert re.fullmatch(r"\d{2}-\d{3}", _text(root, f"{sender}/adr:Adres/adr:KodPocztowy"))
    for field in ("Poczta", "Miejscowosc", "Ulica", "Budynek"):
        assert _text(root, f"{sender}/adr:Adres/adr:{field}")

    tresc = root.xpath("wnio:TrescDokumentu", namespaces=NS)[0]
    assert (tresc.get("format"), tresc.get("kodowanie")) == ("text/xml", "XML")
    assert _text(root, "wnio:TrescDokumentu/wnio:Wartosc/wnio:Tytul") == doc.title
    assert _text(root, "wnio:TrescDokumentu/wnio:Wartosc/wnio:MiejscowoscDokumentu")
    body = _text(root, "wnio:TrescDokumentu/wnio:Wartosc/wnio:Tresc")
    assert body.startswith("Szanowni Państwo,")
    assert body.endswith(f"{doc.sender_first_name} {doc.sender_last_name}")


def test_creation_date_is_the_warsaw_calendar_day():
    # 23:30 UTC on 31 March 2024 is already 1 April in Warsaw (CEST, UTC+2).
    doc = _generate(sent_at=datetime(2024, 3, 31, 23, 30, tzinfo=UTC))
    assert _text(_parse(doc.content), "wnio:OpisDokumentu/meta:Data") == "2024-04-01"


def test_unknown_teryt_takes_the_town_from_the_office_name():
    doc = _generate(office_name="Urząd Gminy w Kowali", office_teryt="1407042")
    path = "wnio:DaneDokumentu/str:Adresaci/meta:Podmiot/inst:Instytucja/adr:Adres/adr:Miejscowosc"
    assert _text(_parse(doc.content), path) == "Kowali"


def test_generated_people_have_valid_pesels_matching_their_sex_and_age():
    rng = random.Random(2024)
    for _ in range(500):
        doc = generate_pismo_ogolne(rng, **RADOM, sent_at=SENT_AT, attachments=0)
        assert _independent_pesel_ok(doc.sender_pesel), doc.sender_pesel
        assert date(1940, 1, 1) <= _pesel_birth_date(doc.sender_pesel) <= date(2005, 12, 31)
        # Polish female first names end in "a", and so do all in the generator's list.
        female = doc.sender_first_name.endswith("a")
        assert int(doc.sender_pesel[9]) % 2 == (0 if female else 1)
        if female:  # Kowalski becomes Kowalska for a woman
            assert not doc.sender_last_name.endswith(("ski", "cki"))
        assert re.fullmatch(r"[a-z]+\d{2}", doc.sender_login), doc.sender_login


def test_titles_vary_and_are_polish_letters():
    rng = random.Random(5)
    titles = {generate_pismo_ogolne(rng, **RADOM, sent_at=SENT_AT).title for _ in range(200)}
    assert len(titles) >= 6
    assert "Wniosek o udostępnienie informacji publicznej" in titles
    assert "Prośba o wydanie zaświadczenia" in titles
    assert any(t.startswith("Skarga na działanie ") for t in titles)


def _pdf_is_consistent(pdf: bytes) -> bool:
    """The header, trailer and every xref offset of a simple PDF must line up."""
    if not (pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")):
        return False
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    xref = pdf[startxref:]
    if not xref.startswith(b"xref"):
        return False
    lines = xref.split(b"\n")
    count = int(lines[1].split()[1])
    for number in range(1, count):
        offset = int(lines[2 + number].split()[0])
        if not pdf[offset:].startswith(b"%d 0 obj" % number):
            return False
    return True


@pytest.mark.parametrize("attachments", [0, 1, 3])
def test_attachments_are_base64_pdfs(attachments):
    root = _parse(_generate(attachments=attachments).content)
    found = root.xpath("str:Zalaczniki/str:Zalacznik", namespaces=NS)
    assert len(found) == attachments
    assert bool(root.xpath("str:Zalaczniki", namespaces=NS)) == (attachments > 0)
    names = {z.get("nazwaPliku") for z in found}
    assert len(names) == attachments
    for zalacznik in found:
        assert zalacznik.get("format") == "application/pdf"
        assert zalacznik.get("kodowanie") == "base64"
        assert zalacznik.get("nazwaPliku").endswith(".pdf")
        data_node = zalacznik.find(f"{{{NS['str']}}}DaneZalacznika")
        pdf = base64.b64decode(data_node.text, validate=True)
        assert 1_000 < len(pdf) < 20_000
        assert _pdf_is_consistent(pdf)


def test_generation_stays_under_a_millisecond_per_document():
    rng = random.Random(11)
    generate_pismo_ogolne(rng, **RADOM, sent_at=SENT_AT)  # warm the attachment cache
    count = 1_000
    started = time.perf_counter()
    for _ in range(count):
        generate_pismo_ogolne(rng, **RADOM, sent_at=SENT_AT, attachments=1)
    per_document = (time.perf_counter() - started) / count
    assert per_document < 0.001, f"{per_document * 1000:.3f} ms per document"
