"""Generate the sample region (``hub/defaults/region.toml``) from the TERYT TERC register.

    .venv/bin/python scripts/make_region.py            # write the region file
    .venv/bin/python scripts/make_region.py --check    # exit 1 if the committed file differs

Offices: the voivodeship's own office (14), its 42 county-level units (37 powiaty and
5 cities with powiat rights) and its 314 gminas, with their TERC codes and names
(``hub/defaults/teryt/TERC_mazowieckie.csv``, see the SOURCES.md beside it). The
offices the demo has always used come first, with the names and addresses they always
had, so ``hub demo --offices N`` picks the same offices as before.

Every ESP address and e-Doręczenia address here is synthetic: valid in form, assigned
to nobody. The e-Doręczenia address carries the office's TERC code in its digits.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TERC = ROOT / "hub" / "defaults" / "teryt" / "TERC_mazowieckie.csv"
REGION = ROOT / "hub" / "defaults" / "region.toml"
VOIVODESHIP = "14"

# TERC's NAZWA_DOD for each kind of office the catalogue keeps (RODZ 4, 5 and 8 rows,
# the towns and rural parts of urban-rural gminas and Warsaw's districts, are not offices).
KINDS = {
    "województwo": "województwo",
    "powiat": "powiat",
    "miasto na prawach powiatu": "miasto na prawach powiatu",
    "miasto stołeczne, na prawach powiatu": "miasto na prawach powiatu",
    "gmina miejska": "gmina miejska",
    "gmina miejska, miasto stołeczne": "gmina miejska",
    "gmina wiejska": "gmina wiejska",
    "gmina miejsko-wiejska": "gmina miejsko-wiejska",
}

# The demo's offices, first and as they always were: (id, name, ESP address).
DEMO_OFFICES = (
    ("14", "Urząd Marszałkowski Województwa Mazowieckiego w Warszawie", "/umwm/skrytka"),
    ("146501_1", "Urząd m.st. Warszawy", "/umwarszawa/skrytka"),
    ("146301_1", "Urząd Miejski w Radomiu", "/umradom/skrytka"),
    ("146201_1", "Urząd Miasta Płocka", "/umplock/skrytka"),
    ("146401_1", "Urząd Miasta Siedlce", "/umsiedlce/skrytka"),
    ("146101_1", "Urząd Miasta Ostrołęki", "/umostroleka/skrytka"),
    ("142102_1", "Urząd Miasta Pruszkowa", "/umpruszkow/skrytka"),
    ("142106_2", "Urząd Gminy Raszyn", "/ugraszyn/skrytka"),
    ("140802_2", "Urząd Gminy Jabłonna", "/ugjablonna/skrytka"),
    ("140801_1", "Urząd Miasta Legionowo", "/umlegionowo/skrytka"),
    ("141804_3", "Urząd Miasta i Gminy Piaseczno", "/umigpiaseczno/skrytka"),
    ("143205_3", "Urząd Miejski w Łomiankach", "/umlomianki/skrytka"),
    ("143412_3", "Urząd Miejski w Wołominie", "/umwolomin/skrytka"),
    ("140201_1", "Urząd Miasta Ciechanów", "/umciechanow/skrytka"),
    ("1421", "Starostwo Powiatowe w Pruszkowie", "/sppruszkow/skrytka"),
    ("1418", "Starostwo Powiatowe w Piasecznie", "/sppiaseczno/skrytka"),
    ("1408", "Starostwo Powiatowe w Legionowie", "/splegionowo/skrytka"),
)

# Offices whose accounting still runs on an old system that exchanges files: the
# gminas of this powiat.
FILE_DROP_POWIAT = "łosicki"

NAME_PREFIX = {
    "gmina miejska": ("Urząd Miasta", "um"),
    "gmina wiejska": ("Urząd Gminy", "ug"),
    "gmina miejsko-wiejska": ("Urząd Miasta i Gminy", "umig"),
}
ASCII = str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ")


@dataclass(frozen=True)
class Unit:
    """One TERC row that is an office: its code parts, name and kind."""

    woj: str
    pow: str
    gmi: str
    rodz: str
    name: str
    kind: str

    @property
    def office_id(self) -> str:
        """``WW``, ``WWPP`` or ``WWPPGG_R``, as the hub names offices."""
        if not self.pow:
            return self.woj
        if not self.gmi:
            return self.woj + self.pow
        return f"{self.woj}{self.pow}{self.gmi}_{self.rodz}"

    @property
    def digits(self) -> str:
        """The TERC code as ten digits for the e-Doręczenia address (``WWPPGGR`` + 001)."""
        if not self.gmi:
            return f"{self.woj}{self.pow or '00'}000001"
        return f"{self.woj}{self.pow}{self.gmi}{self.rodz}001"


@dataclass(frozen=True)
class Office:
    """An office as the region file lists it."""

    id: str
    name: str
    kind: str
    esp: str
    edoreczenia: str


def read_units(path: Path) -> list[Unit]:
    """The TERC rows of the voivodeship that are offices, in register order."""
    with path.open(encoding="utf-8", newline="") as lines:
        rows = list(csv.DictReader(lines, delimiter=";"))
    return [
        Unit(row["WOJ"], row["POW"], row["GMI"], row["RODZ"], row["NAZWA"], KINDS[row["NAZWA_DOD"]])
        for row in rows
        if row["WOJ"] == VOIVODESHIP and row["NAZWA_DOD"] in KINDS
    ]


def offices_of(units: Sequence[Unit]) -> list[Office]:
    """Every office, the demo's first, each with its synthetic addresses."""
    by_id = {unit.office_id: unit for unit in units}
    demo = {office_id: (name, esp) for office_id, name, esp in DEMO_OFFICES}
    order = [office_id for office_id, _, _ in DEMO_OFFICES]
    order += [unit.office_id for unit in units if unit.office_id not in demo]
    taken: set[str] = {esp for _, esp in demo.values()}
    offices = []
    for number, office_id in enumerate(order, start=1):
        unit = by_id[office_id]
        if office_id in demo:
            name, esp = demo[office_id]
        else:
            name, esp = _name_and_esp(unit, by_id, demo, taken)
            taken.add(esp)
        address = f"AE:PL-{unit.digits[:5]}-{unit.digits[5:]}-HUBDM-{number % 100:02d}"
        offices.append(Office(office_id, name, unit.kind, esp, address))
    return offices


def _name_and_esp(
    unit: Unit, by_id: dict[str, Unit], demo: dict[str, tuple[str, str]], taken: set[str]
) -> tuple[str, str]:
    if unit.kind == "miasto na prawach powiatu":
        # The city's own office does the county's work; its county mailbox is a second one.
        fallback = (f"Urząd Miasta {unit.name}", "")
        city_name, city_esp = demo.get(f"{unit.woj}{unit.pow}01_1", fallback)
        podmiot = city_esp.split("/")[1] if city_esp else f"um{_slug(unit.name)}"
        return f"{city_name} (zadania powiatu)", f"/{podmiot}/powiat"
    if unit.kind == "powiat":
        name = f"Starostwo Powiatu {_genitive(unit.name)}"
        return name, _free(f"sp{_slug(unit.name)}", unit, taken)
    title, prefix = NAME_PREFIX[unit.kind]
    return f"{title} {unit.name}", _free(f"{prefix}{_slug(unit.name)}", unit, taken)


def _free(podmiot: str, unit: Unit, taken: set[str]) -> str:
    esp = f"/{podmiot}/skrytka"
    # Gminas of the same name in two powiaty: the powiat's code tells them apart.
    return esp if esp not in taken else f"/{podmiot}{unit.pow}/skrytka"


def _slug(name: str) -> str:
    return "".join(ch for ch in name.translate(ASCII).lower() if ch.isalnum())


def _genitive(adjectives: str) -> str:
    """``warszawski zachodni`` → ``Warszawskiego Zachodniego`` (every TERC powiat ends in -i)."""
    return " ".join(word[:1].upper() + word[1:] + "ego" for word in adjectives.split())


def render(offices: Sequence[Office], units: Sequence[Unit]) -> str:
    """The region file."""
    file_drop = [
        unit.office_id
        for unit in units
        if unit.gmi and unit.pow == _powiat_code(units, FILE_DROP_POWIAT)
    ]
    parts = [HEADER, *(_office_toml(office) for office in offices), SERVICES, SYSTEMS]
    parts.append(_file_drop_system(file_drop))
    parts += [HANDLING, ROUTES, INBOUND]
    return "\n".join(parts)


def _powiat_code(units: Iterable[Unit], name: str) -> str:
    return next(unit.pow for unit in units if unit.kind == "powiat" and unit.name == name)


def _office_toml(office: Office) -> str:
    return (
        f"[[offices]]\nid = {_quote(office.id)}\nname = {_quote(office.name)}\n"
        f"kind = {_quote(office.kind)}\nesp = {_quote(office.esp)}\n"
        f"edoreczenia = {_quote(office.edoreczenia)}\n"
    )


def _file_drop_system(office_ids: Sequence[str]) -> str:
    return (
        "# A few old offices keep their accounting on a system that exchanges files.\n"
        '[[systems]]\nname = "ksiegowosc"\nkind = "file-drop"\n'
        f"offices = {json.dumps(list(office_ids))}\n"
        'url = "file://${HUB_FILE_DROP_ROOT:-/var/lib/hub/wymiana}/ksiegowosc/{office}"\n'
    )


def _quote(text: str) -> str:
    # JSON string syntax is valid TOML basic-string syntax.
    return json.dumps(text, ensure_ascii=False)


HEADER = """\
# The sample region the demo and a fresh install run on: every office of the Mazowieckie
# voivodeship with its TERYT code and name (GUS TERYT TERC, as of 2025-01-01; see
# hub/defaults/teryt/SOURCES.md), the services citizens file with them, and which of
# each office's systems handles each service.
#
# GENERATED by scripts/make_region.py from hub/defaults/teryt/TERC_mazowieckie.csv:
# change the script and run it again rather than editing this file.
#
# Office ids: WWPPGG_R for a gmina, WWPP for a county-level office (a starostwo, or a
# city with powiat rights in its county role), WW for the voivodeship's own office.
# ESP and e-Doręczenia addresses are synthetic (valid in form, assigned to nobody).
# The first 17 offices are the ones `hub demo --offices N` has always used.

[region]
name = "Województwo mazowieckie"
"""

SERVICES = """\
# The service catalogue (WKUP): what citizens and businesses file, by the namespace of
# the form template (the document type), with the statutory deadline for the case.
[[services]]
id = "pismo-ogolne"
name = "Pismo ogólne do podmiotu publicznego"
form = "http://crd.gov.pl/wzor/2013/12/12/1410/"
deadline_days = 30
description = "Pismo w sprawie bez osobnego formularza (KPA art. 35 § 3: do miesiąca)."

[[services]]
id = "podatek-od-nieruchomosci"
name = "Informacja i deklaracja na podatek od nieruchomości (IN-1, DN-1)"
form = "urn:hub:wzor:podatek-od-nieruchomosci:1"
deadline_days = 30
description = "Rejestrowana w EOD, przekazywana do systemu podatkowego gminy."

[[services]]
id = "zezwolenie-alkoholowe"
name = "Zezwolenie na sprzedaż napojów alkoholowych"
form = "urn:hub:wzor:zezwolenie-alkoholowe:1"
deadline_days = 30
description = "Rejestrowane w EOD i w gminnym rejestrze zezwoleń."

[[services]]
id = "zajecie-pasa-drogowego"
name = "Zezwolenie na zajęcie pasa drogowego"
form = "urn:hub:wzor:zajecie-pasa-drogowego:1"
deadline_days = 30
description = "Drogi powiatowe: rejestrowane w EOD i w rejestrze zarządcy drogi."
"""

SYSTEMS = """\
# Every office runs a document-management system (EOD) reached over REST.
[[systems]]
name = "eod"
kind = "eod-rest"
offices = "*"
url = "${HUB_EOD_URL:-http://127.0.0.1:8091}/offices/{office}/documents"
timeout_s = 10.0

# Every office sends its decisions through ePUAP with UPD (doręczenie), signed by its key,
# and files the UPDs that come back with the decision they certify.
[[systems]]
name = "epuap"
kind = "epuap-doreczyciel"
offices = "*"
url = "${HUB_EPUAP_URL:-http://127.0.0.1:8090}/pk_external_ws/services/doreczyciel"
timeout_s = 10.0

[[systems]]
name = "receipts"
kind = "epuap-receipts"
offices = "*"
url = "store:"

# Every gmina keeps its local taxes in a tax system (REST/JSON) ...
[[systems]]
name = "podatki"
kind = "tax-rest"
kinds = ["gmina"]
url = "${HUB_TAX_URL:-http://127.0.0.1:8094}/api/v1/declarations"
timeout_s = 10.0

# ... and its alcohol permits in a register fed over RabbitMQ: the regional portal's
# shared module, one interface (legacy.alkohol.in/.out) for every gmina, each document
# naming its office (hub-office).
[[systems]]
name = "alkohol"
kind = "registers-amqp"
kinds = ["gmina"]
url = "${HUB_REGISTERS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
options = { queue_in = "legacy.{system}.in", queue_out = "legacy.{system}.out" }

# County roads: the road managers' register of lane occupations, a shared module too.
[[systems]]
name = "drogi"
kind = "registers-amqp"
kinds = ["powiat", "miasto na prawach powiatu"]
url = "${HUB_REGISTERS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
options = { queue_in = "legacy.{system}.in", queue_out = "legacy.{system}.out" }

# The larger offices run a finance system with a SOAP interface.
[[systems]]
name = "finanse"
kind = "finance-soap"
kinds = ["województwo", "powiat", "miasto na prawach powiatu", "gmina miejska"]
url = "${HUB_FINANCE_URL:-http://127.0.0.1:8096}/system-finansowy/v1"
timeout_s = 10.0
options = { default_kind = "FAKTURA" }
"""

HANDLING = """\
# Which systems handle each service. Every system listed gets the filing: a tax
# declaration is registered in the EOD and processed in the tax system.
[[handling]]
service = "pismo-ogolne"
systems = ["eod"]
offices = "*"
# Its signatures (if any) are checked and recorded; an unsigned letter still flows (ePUAP
# has authenticated the sender). The EOD gets it sealed with the hub's key.
steps = ["check_well_formed", "verify_signature", "seal_for_delivery"]

[[handling]]
service = "podatek-od-nieruchomosci"
systems = ["eod", "podatki"]
kinds = ["gmina"]
[handling.steps]
eod = ["check_well_formed", "verify_signature", "seal_for_delivery"]
podatki = ["check_well_formed", "apply_mapping:property-tax-declaration-to-tax-system"]

[[handling]]
service = "zezwolenie-alkoholowe"
systems = ["eod", "alkohol"]
kinds = ["gmina"]
[handling.steps]
eod = ["check_well_formed", "verify_signature", "seal_for_delivery"]
alkohol = ["check_well_formed", "apply_mapping:alcohol-permit-application-to-register"]

[[handling]]
service = "zajecie-pasa-drogowego"
systems = ["eod", "drogi"]
kinds = ["powiat", "miasto na prawach powiatu"]
[handling.steps]
eod = ["check_well_formed", "verify_signature", "seal_for_delivery"]
drogi = ["check_well_formed", "apply_mapping:road-lane-application-to-register"]
"""

ROUTES = """\
# Documents that are not citizens' filings travel by explicit routes.
# An office's decision (handed over by its EOD through the intake) goes to the citizen.
[[routes]]
name = "decision-to-citizen"
document_type = "urn:hub:eod:decyzja:1"
sources = ["eod"]
target_system = "epuap"
steps = ["check_well_formed", "sign_with_office"]

# The domain systems' decisions become letters to the citizen, signed with the office's
# key and delivered through ePUAP with UPD, like the EOD's.
[[routes]]
name = "tax-decision-to-citizen"
document_type = "urn:hub:legacy:podatki:decyzja:1"
sources = ["podatki"]
target_system = "epuap"
steps = ["apply_mapping:property-tax-decision-to-letter", "sign_with_office"]

[[routes]]
name = "alcohol-permit-decision-to-citizen"
document_type = "urn:hub:legacy:alkohol:decyzja:1"
sources = ["alkohol"]
target_system = "epuap"
steps = ["check_well_formed", "apply_mapping:alcohol-permit-decision-to-letter", "sign_with_office"]

[[routes]]
name = "road-lane-decision-to-citizen"
document_type = "urn:hub:legacy:drogi:decyzja:1"
sources = ["drogi"]
target_system = "epuap"
steps = ["check_well_formed", "apply_mapping:road-lane-decision-to-letter", "sign_with_office"]

# UPP/UPD receipts pulled from an office's mailbox are filed with what they certify.
[[routes]]
name = "epuap-receipts"
document_type = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
sources = ["epuap"]
target_system = "receipts"

# A purchase invoice from KSeF goes to the office's finance system in its own format.
[[routes]]
name = "ksef-invoice-to-finance"
document_type = "http://crd.gov.pl/wzor/2025/06/25/13775/"
target_system = "finanse"
steps = ["check_well_formed", "apply_mapping:ksef-invoice-to-finance"]

# An accounting invoice goes to the old accounting system of the offices that have one.
[[routes]]
name = "invoice-to-accounting"
document_type = "urn:hub:legacy:faktura-ksiegowa:1"
target_system = "ksiegowosc"
"""

INBOUND = """\
# The hub pulls every office's ePUAP mailbox, each call signed (WS-Security) with the
# office's certificate from the keystore (`hub keys init` makes test ones).
[[inbound]]
name = "epuap"
kind = "epuap-pull"
url = "${HUB_EPUAP_URL:-http://127.0.0.1:8090}/pk_external_ws/services/pull"
ws_security = true

# ... and every office's e-Doręczenia mailbox, with OAuth2 client credentials.
[[inbound]]
name = "edoreczenia"
kind = "edoreczenia-poll"
url = "${HUB_EDORECZENIA_URL:-http://127.0.0.1:8093}/api/v1"
token_url = "${HUB_EDORECZENIA_URL:-http://127.0.0.1:8093}/oauth2/token"
client_id = "${HUB_EDORECZENIA_CLIENT_ID:-hub}"
client_secret = "${HUB_EDORECZENIA_CLIENT_SECRET:-demo-secret}"

# ... and the registers' answers (acknowledgements with their register numbers, refusals,
# case steps) from the .out queue of every register, filed as receipts of the deliveries.
[[inbound]]
name = "registers-answers"
kind = "registers-answers"
url = "${HUB_REGISTERS_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Write the region file, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--output", type=Path, default=REGION)
    arguments = parser.parse_args(argv)
    units = read_units(TERC)
    text = render(offices_of(units), units)
    if arguments.check:
        current = arguments.output.read_text(encoding="utf-8")
        if current != text:
            generator = Path(__file__).name
            print(f"{arguments.output} is not what {generator} generates", file=sys.stderr)
            return 1
        return 0
    arguments.output.write_text(text, encoding="utf-8")
    print(f"{arguments.output}: {len(units)} offices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
