"""Synthetic "Pismo ogólne do podmiotu publicznego" documents, shaped like the CRWDE form.

Everything here is invented: names, PESELs, addresses and letters are drawn from small
word lists with a caller-supplied ``random.Random``, so a seed always yields the same
documents (given the same ``sent_at``). No real person's data is used.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from lxml import etree

__all__ = [
    "NS",
    "GeneratedDocument",
    "Person",
    "generate_person",
    "generate_pesel",
    "generate_pismo_ogolne",
    "pesel_check_digit",
    "sha1_b64",
]

#: Namespaces of the CRD "Pismo ogólne do podmiotu publicznego" form (wzór 2013/12/12/1410).
NS: dict[str, str] = {
    "wnio": "http://crd.gov.pl/wzor/2013/12/12/1410/",
    "meta": "http://crd.gov.pl/xml/schematy/meta/2009/11/16/",
    "str": "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/",
    "adr": "http://crd.gov.pl/xml/schematy/adres/2009/11/09/",
    "oso": "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/",
    "inst": "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/",
}

DOCUMENT_NAME = "Pismo ogólne do podmiotu publicznego"

_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
# Official documents carry the civil (Warsaw) date, not the UTC one.
_WARSAW = ZoneInfo("Europe/Warsaw")

_MALE_NAMES = (
    "Adam",
    "Andrzej",
    "Bartosz",
    "Damian",
    "Dariusz",
    "Grzegorz",
    "Jakub",
    "Jan",
    "Jerzy",
    "Kamil",
    "Krzysztof",
    "Łukasz",
    "Maciej",
    "Marcin",
    "Marek",
    "Mateusz",
    "Michał",
    "Paweł",
    "Piotr",
    "Rafał",
    "Robert",
    "Stanisław",
    "Szymon",
    "Tadeusz",
    "Tomasz",
    "Wojciech",
    "Zbigniew",
)
_FEMALE_NAMES = (
    "Agnieszka",
    "Aleksandra",
    "Alicja",
    "Anna",
    "Barbara",
    "Beata",
    "Dorota",
    "Elżbieta",
    "Ewa",
    "Grażyna",
    "Halina",
    "Irena",
    "Joanna",
    "Julia",
    "Justyna",
    "Katarzyna",
    "Magdalena",
    "Małgorzata",
    "Maria",
    "Marta",
    "Monika",
    "Natalia",
    "Teresa",
    "Urszula",
    "Wiktoria",
    "Zofia",
)
# Masculine forms; _surname_for() derives the feminine one (-ski -> -ska, ...).
_SURNAMES = (
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Kwiatkowski",
    "Krawczyk",
    "Piotrowski",
    "Grabowski",
    "Nowakowski",
    "Pawłowski",
    "Michalski",
    "Adamczyk",
    "Dudek",
    "Zając",
    "Wieczorek",
    "Jabłoński",
    "Król",
    "Majewski",
    "Olszewski",
    "Jaworski",
    "Wróbel",
    "Malinowski",
    "Pawlak",
    "Witkowski",
    "Walczak",
    "Stępień",
    "Górski",
    "Rutkowski",
    "Michalak",
    "Sikora",
    "Ostrowski",
    "Baran",
    "Duda",
    "Szewczyk",
    "Tomaszewski",
    "Pietrzak",
    "Marciniak",
    "Wróblewski",
    "Zalewski",
    "Sadowski",
)
_STREETS = (
    "Adama Mickiewicza",
    "Juliusza Słowackiego",
    "Stefana Żeromskiego",
    "Tadeusza Kościuszki",
    "Henryka Sienkiewicza",
    "Marii Konopnickiej",
    "Długa",
    "Krótka",
    "Lipowa",
    "Polna",
    "Leśna",
    "Słoneczna",
    "Szkolna",
    "Ogrodowa",
    "Kwiatowa",
    "Parkowa",
    "Kolejowa",
    "Piłsudskiego",
    "3 Maja",
    "Wolności",
    "Spacerowa",
    "Brzozowa",
    "Klonowa",
    "Akacjowa",
    "Jana Pawła II",
    "Żwirki i Wigury",
    "Partyzantów",
    "Grunwaldzka",
    "Warszawska",
    "Kościelna",
)


@dataclass(frozen=True)
class _City:
    """A city with its postal-code range and the first four TERYT digits (województwo+powiat)."""

    name: str
    teryt_prefix: str
    postal_base: int
    postal_span: int


_CITIES = (
    _City("Warszawa", "1465", 1001, 4000),
    _City("Radom", "1463", 26600, 18),
    _City("Płock", "1462", 9400, 11),
    _City("Siedlce", "1464", 8110, 11),
    _City("Ostrołęka", "1461", 7400, 18),
    _City("Kraków", "1261", 30001, 1999),
    _City("Łódź", "1061", 90001, 3999),
    _City("Wrocław", "0264", 50001, 4439),
    _City("Poznań", "3064", 60001, 1999),
    _City("Gdańsk", "2261", 80001, 999),
    _City("Lublin", "0663", 20001, 999),
    _City("Kielce", "2661", 25001, 999),
    _City("Białystok", "2061", 15001, 999),
    _City("Rzeszów", "1863", 35001, 999),
    _City("Olsztyn", "2862", 10001, 999),
    _City("Opole", "1661", 45001, 999),
    _City("Katowice", "2469", 40001, 999),
    _City("Szczecin", "3262", 70001, 1999),
    _City("Bydgoszcz", "0461", 85001, 999),
    _City("Toruń", "0463", 87100, 50),
)
_CITY_BY_TERYT = {city.teryt_prefix: city for city in _CITIES}

_UNITS = (
    "Wydziału Komunikacji",
    "Straży Miejskiej",
    "Wydziału Architektury i Budownictwa",
    "Wydziału Gospodarki Nieruchomościami",
    "Miejskiego Zarządu Dróg",
    "Wydziału Ochrony Środowiska",
    "Biura Obsługi Mieszkańców",
)
_PUBLIC_INFO_TOPICS = (
    "kopii umów zawartych przez urząd w {year} r. na utrzymanie zieleni miejskiej",
    "wykazu wydatków poniesionych na promocję w {year} r.",
    "informacji o liczbie wydanych w {year} r. decyzji o warunkach zabudowy",
    "kopii protokołów kontroli przeprowadzonych w {year} r. w placówkach oświatowych",
    "informacji o kosztach remontu ulicy {street} wykonanego w {year} r.",
)
_CERTIFICATES = (
    "zaświadczenia o niezaleganiu w podatkach lokalnych",
    "zaświadczenia o przeznaczeniu działki w miejscowym planie zagospodarowania",
    "zaświadczenia o samodzielności lokalu",
    "zaświadczenia o wpisie do ewidencji działalności gospodarczej",
)
_CLOSING_SENTENCES = (
    "Odpowiedź proszę przesłać na moją skrytkę ePUAP.",
    "Proszę o kontakt telefoniczny w razie potrzeby uzupełnienia wniosku.",
    "Wszystkie potrzebne dokumenty przesyłam w załączeniu.",
    "Wyrażam zgodę na doręczanie pism w tej sprawie środkami komunikacji elektronicznej.",
    "Sprawa jest dla mnie pilna, dlatego proszę o możliwie szybkie jej załatwienie.",
)
_ATTACHMENT_NAMES = (
    "skan-dokumentu.pdf",
    "pelnomocnictwo.pdf",
    "potwierdzenie-oplaty.pdf",
    "mapa-sytuacyjna.pdf",
    "dokumentacja-zdjeciowa.pdf",
)
_ASCII_FOLD = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")


@dataclass(frozen=True)
class Person:
    """A synthetic citizen: the sender of a pismo ogólne."""

    first_name: str
    last_name: str
    pesel: str
    login: str
    female: bool


@dataclass(frozen=True)
class GeneratedDocument:
    """One generated pismo ogólne: the XML bytes plus the facts a test may want to check."""

    content: bytes
    title: str
    sender_login: str
    sender_first_name: str
    sender_last_name: str
    sender_pesel: str


def sha1_b64(content: bytes) -> str:
    """Return base64 of the SHA-1 digest of ``content``: the ``skrot`` ePUAP clients confirm with.

    Args:
        content: the document bytes (``zawartosc``).

    Returns:
        The digest as an ASCII base64 string.
    """
    # SHA-1 is the protocol's document fingerprint here, not a security control.
    digest = hashlib.sha1(content, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def pesel_check_digit(first_ten: str) -> int:
    """Return the PESEL check digit for its first ten digits (weights 1,3,7,9,1,3,7,9,1,3)."""
    total = sum(int(d) * w for d, w in zip(first_ten, _PESEL_WEIGHTS, strict=True))
    return (10 - total % 10) % 10


def _pesel_month(birth: date) -> int:
    """Return the PESEL month field: the month plus a century offset."""
    century_offset = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}[birth.year // 100]
    return birth.month + century_offset


def generate_pesel(rng: random.Random, birth: date, *, female: bool) -> str:
    """Return a well-formed PESEL for that birth date and sex.

    Args:
        rng: source of the serial number.
        birth: birth date (years 1800-2299 are encodable).
        female: the sex digit is even for women and odd for men.

    Returns:
        Eleven digits with a correct check digit.
    """
    serial = rng.randrange(1000)
    sex_digit = rng.randrange(0, 10, 2) + (0 if female else 1)
    first_ten = (
        f"{birth.year % 100:02d}{_pesel_month(birth):02d}{birth.day:02d}{serial:03d}{sex_digit}"
    )
    return first_ten + str(pesel_check_digit(first_ten))


def _surname_for(masculine: str, *, female: bool) -> str:
    """Return the surname in the right grammatical gender (Kowalski -> Kowalska)."""
    if female and masculine.endswith(("ski", "cki", "dzki")):
        return masculine[:-1] + "a"
    return masculine


def generate_person(rng: random.Random) -> Person:
    """Return a synthetic adult citizen with a valid PESEL and an ePUAP-style login."""
    female = rng.random() < 0.5
    first = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
    last = _surname_for(rng.choice(_SURNAMES), female=female)
    # Adults born 1940-2005; day offset keeps every date valid without calendar checks.
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
    pesel = generate_pesel(rng, birth, female=female)
    login = f"{first[0]}{last}{rng.randrange(10, 100)}".lower().translate(_ASCII_FOLD)
    return Person(first_name=first, last_name=last, pesel=pesel, login=login, female=female)


def _office_city(office_name: str, office_teryt: str) -> str:
    """Return the office's town: known from its TERYT code, else the words after " w "."""
    city = _CITY_BY_TERYT.get(office_teryt[:4])
    if city is not None:
        return city.name
    # Unknown TERYT: "Urząd Gminy w Kowali" gives "Kowali" (locative, but recognisable).
    _, sep, tail = office_name.rpartition(" w ")
    return tail if sep else office_name


def _sender_city(rng: random.Random, office_teryt: str) -> _City:
    """Return where the sender lives: mostly the office's own city, sometimes elsewhere."""
    local = _CITY_BY_TERYT.get(office_teryt[:4])
    if local is not None and rng.random() < 0.75:
        return local
    return rng.choice(_CITIES)


def _postal_code(rng: random.Random, city: _City) -> str:
    """Return a postal code NN-NNN inside the city's range."""
    number = city.postal_base + rng.randrange(city.postal_span)
    return f"{number // 1000:02d}-{number % 1000:03d}"


def _letter(rng: random.Random, person: Person, office_city: str, year: int) -> tuple[str, str]:
    """Return a (title, main paragraph) pair for a plausible citizen's letter."""
    kind = rng.randrange(6)
    if kind == 0:
        topic = rng.choice(_PUBLIC_INFO_TOPICS).format(year=year - 1, street=rng.choice(_STREETS))
        return (
            "Wniosek o udostępnienie informacji publicznej",
            "Na podstawie art. 2 ust. 1 ustawy z dnia 6 września 2001 r. o dostępie do "
            f"informacji publicznej wnoszę o udostępnienie {topic}.",
        )
    if kind == 1:
        unit = rng.choice(_UNITS)
        # Polish past tense agrees with the writer's gender.
        filed, got = ("złożyłam", "otrzymałam") if person.female else ("złożyłem", "otrzymałem")
        return (
            f"Skarga na działanie {unit}",
            f"Składam skargę na przewlekłe załatwianie mojej sprawy przez pracowników {unit}. "
            f"Wniosek {filed} {rng.randrange(5, 9)} tygodni temu i do dziś nie {got} "
            "żadnej odpowiedzi ani informacji o przyczynach zwłoki.",
        )
    if kind == 2:
        certificate = rng.choice(_CERTIFICATES)
        return (
            "Prośba o wydanie zaświadczenia",
            f"Uprzejmie proszę o wydanie {certificate}. Zaświadczenie jest mi potrzebne "
            "do przedłożenia w banku w związku z wnioskiem kredytowym.",
        )
    if kind == 3:
        parcel = f"{rng.randrange(1, 999)}/{rng.randrange(1, 30)}"
        return (
            "Wniosek o wydanie wypisu i wyrysu z miejscowego planu zagospodarowania przestrzennego",
            f"Proszę o wydanie wypisu i wyrysu dla działki ewidencyjnej nr {parcel} położonej "
            f"w miejscowości {office_city}, obręb {rng.randrange(1, 40):04d}.",
        )
    if kind == 4:
        street = rng.choice(_STREETS)
        return (
            "Wniosek o zezwolenie na usunięcie drzewa",
            f"Wnoszę o wydanie zezwolenia na usunięcie drzewa gatunku "
            f"{rng.choice(('lipa', 'topola', 'klon', 'brzoza', 'jesion'))} rosnącego przy "
            f"ul. {street} {rng.randrange(1, 120)}, które zagraża bezpieczeństwu przechodniów.",
        )
    return (
        "Zgłoszenie uszkodzenia nawierzchni drogi",
        f"Zgłaszam głęboki ubytek w nawierzchni jezdni przy ul. {rng.choice(_STREETS)} "
        f"na wysokości budynku nr {rng.randrange(1, 120)}. Uszkodzenie stwarza zagrożenie "
        "dla kierowców i rowerzystów.",
    )


def _body_text(rng: random.Random, main: str, person: Person) -> str:
    """Return the whole letter text: salutation, paragraphs and signature."""
    extra = rng.sample(_CLOSING_SENTENCES, k=rng.randrange(1, 3))
    return "\n\n".join(
        [
            "Szanowni Państwo,",
            main,
            " ".join(extra),
            f"Z poważaniem\n{person.first_name} {person.last_name}",
        ],
    )


def _pdf_escape(text: str) -> str:
    """Escape a string for a PDF literal string."""
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


@cache
def _pdf_bytes(name: str) -> bytes:
    """Return a small, structurally valid one-page PDF (a few KB) named after ``name``.

    Cached because generation must stay well under a millisecond per document: every
    attachment with the same name shares the same bytes.
    """
    # Helvetica in a bare PDF has no Polish glyphs, hence the ASCII-only text.
    lines = [f"Zalacznik: {name}", "Dokument syntetyczny wygenerowany przez symulator ePUAP.", ""]
    lines += [
        f"{i:02d}. Tresc przykladowa zalacznika do pisma ogolnego, bez danych osobowych."
        for i in range(1, 41)
    ]
    text_ops = ["BT", "/F1 10 Tf", "50 800 Td", "12 TL"]
    text_ops += [f"({_pdf_escape(line)}) '" for line in lines]
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


@cache
def _pdf_base64(name: str) -> str:
    """Return the cached PDF for ``name`` as base64 text, ready for str:DaneZalacznika."""
    return base64.b64encode(_pdf_bytes(name)).decode("ascii")


def _q(prefix: str, local: str) -> str:
    """Return the Clark-notation tag for a prefixed CRD element name."""
    return f"{{{NS[prefix]}}}{local}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """Append a child ``prefix:Local`` element (optionally with text) and return it."""
    prefix, local = tag.split(":")
    child = etree.SubElement(parent, _q(prefix, local))
    if text is not None:
        child.text = text
    return child


def _add_recipient(parent: etree._Element, office_name: str, office_city: str) -> None:
    """Append str:Adresaci with the office as an institution."""
    podmiot = _sub(_sub(parent, "str:Adresaci"), "meta:Podmiot")
    instytucja = _sub(podmiot, "inst:Instytucja")
    _sub(instytucja, "inst:NazwaInstytucji", office_name)
    adres = _sub(instytucja, "adr:Adres")
    _sub(adres, "adr:Miejscowosc", office_city)


def _add_sender(parent: etree._Element, rng: random.Random, person: Person, teryt: str) -> str:
    """Append str:Nadawcy with the citizen and their address; return the sender's town."""
    podmiot = _sub(_sub(parent, "str:Nadawcy"), "meta:Podmiot")
    osoba = _sub(podmiot, "oso:Osoba")
    _sub(_sub(osoba, "oso:IdOsoby"), "oso:PESEL", person.pesel)
    _sub(osoba, "oso:Imie", person.first_name)
    _sub(osoba, "oso:Nazwisko", person.last_name)
    city = _sender_city(rng, teryt)
    adres = _sub(podmiot, "adr:Adres")
    _sub(adres, "adr:KodPocztowy", _postal_code(rng, city))
    _sub(adres, "adr:Poczta", city.name)
    _sub(adres, "adr:Miejscowosc", city.name)
    _sub(adres, "adr:Ulica", rng.choice(_STREETS))
    _sub(adres, "adr:Budynek", f"{rng.randrange(1, 150)}{rng.choice(('', '', '', 'A', 'B'))}")
    if rng.random() < 0.4:
        _sub(adres, "adr:Lokal", str(rng.randrange(1, 80)))
    return city.name


def _add_attachments(parent: etree._Element, rng: random.Random, count: int) -> None:
    """Append str:Zalaczniki with ``count`` PDF attachments (none: no element at all)."""
    if count <= 0:
        return
    zalaczniki = _sub(parent, "str:Zalaczniki")
    for name in rng.sample(_ATTACHMENT_NAMES, k=min(count, len(_ATTACHMENT_NAMES))):
        zalacznik = _sub(zalaczniki, "str:Zalacznik")
        zalacznik.set("format", "application/pdf")
        zalacznik.set("kodowanie", "base64")
        zalacznik.set("nazwaPliku", name)
        _sub(zalacznik, "str:DaneZalacznika", _pdf_base64(name))


def generate_pismo_ogolne(
    rng: random.Random,
    *,
    office_name: str,
    office_teryt: str,
    attachments: int = 1,
    sent_at: datetime | None = None,
) -> GeneratedDocument:
    """Generate one pismo ogólne from a synthetic citizen to the given office.

    Args:
        rng: the only source of randomness, so equal seeds give equal documents.
        office_name: the addressee, e.g. "Urząd Miejski w Radomiu".
        office_teryt: the office's 7-digit TERYT code; it places the office (and usually
            the sender) in the right city.
        attachments: number of PDF attachments (capped at the five distinct names known).
        sent_at: creation moment; defaults to now (which makes the date non-deterministic).

    Returns:
        The serialised XML (UTF-8, with declaration) and its sender/title facts.
    """
    moment = sent_at if sent_at is not None else datetime.now(UTC)
    local_day = moment.astimezone(_WARSAW).date() if moment.tzinfo else moment.date()
    person = generate_person(rng)
    office_city = _office_city(office_name, office_teryt)

    root = etree.Element(_q("wnio", "Dokument"), nsmap=NS)
    data = _sub(_sub(root, "wnio:OpisDokumentu"), "meta:Data", local_day.isoformat())
    data.set("typDaty", "utworzony")

    dane = _sub(root, "wnio:DaneDokumentu")
    _sub(_sub(dane, "str:Naglowek"), "str:NazwaDokumentu", DOCUMENT_NAME)
    _add_recipient(dane, office_name, office_city)
    sender_city = _add_sender(dane, rng, person, office_teryt)

    title, main = _letter(rng, person, office_city, local_day.year)
    tresc = _sub(root, "wnio:TrescDokumentu")
    tresc.set("format", "text/xml")
    tresc.set("kodowanie", "XML")
    wartosc = _sub(tresc, "wnio:Wartosc")
    _sub(wartosc, "wnio:MiejscowoscDokumentu", sender_city)
    _sub(wartosc, "wnio:Tytul", title)
    _sub(wartosc, "wnio:Tresc", _body_text(rng, main, person))

    _add_attachments(root, rng, attachments)
    content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return GeneratedDocument(
        content=content,
        title=title,
        sender_login=person.login,
        sender_first_name=person.first_name,
        sender_last_name=person.last_name,
        sender_pesel=person.pesel,
    )
