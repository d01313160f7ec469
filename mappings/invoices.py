"""Invoices: the finance system's sales invoice → KSeF FA(3), and a KSeF invoice → finance record.

**finance-invoice-to-ksef.** The office's finance system issues a sales invoice (a fee
for occupying a road lane, a lease) as JSON (``urn:hub:legacy:finanse:faktura-sprzedazy:1``)::

    {"schema": ..., "number", "issued_on", "place"?, "sale_date"?, "created_at",
     "currency": "PLN", "split_payment"?: false, "exemption_basis"?: "art. 43 ust. 1 ...",
     "seller": {"nip", "name", "address": {"line1", "line2"?}, "email"?},
     "buyer": {"nip", "name", "address": {"line1", "line2"?}, "customer_number"?,
               "jst_subunit"?: false},
     "lines": [{"name", "unit", "quantity", "unit_net_price", "vat_rate"}],
     "payment": {"due_date", "method": "transfer" | "cash" | "card", "account"?}}

``vat_rate`` is ``"23"``, ``"8"``, ``"5"``, ``"0"`` (domestic 0%) or ``"zw"`` (exempt; then
``exemption_basis`` is required). The mapping computes each line's net value, the net and
VAT per rate (VAT on the rate's net sum, rounded half up to grosze) and the gross total,
writes the national FA(3) structured invoice (``http://crd.gov.pl/wzor/2025/06/25/13775/``)
and validates it against the Ministry of Finance's XSD (``wsdl/ksef/``) before returning it.

**ksef-invoice-to-finance.** An FA(3) invoice received from KSeF (validated against the same
XSD) becomes the finance system's purchase record (``urn:hub:legacy:finanse:faktura-zakupu:1``)::

    {"schema": ..., "ksef_number" | null, "number", "issued_on", "sale_date" | null,
     "currency", "seller": {"nip", "name", "address": [...]},
     "buyer": {"nip" | null, "name" | null}, "net_total", "vat_total", "gross_total",
     "vat": [{"rate", "net", "vat"}], "lines": [{"no", "name", "unit", "quantity",
     "unit_net_price", "net", "vat_rate"}], "payment": {"paid", "paid_on", "due_dates",
     "method", "accounts"}}

The KSeF number is not inside the invoice; it comes from the context key ``ksef-number``.
The mapping refuses an invoice whose gross total is not its net plus VAT sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, cast

from lxml import etree

from mappings.base import JSON, XML, Context, Mapping
from mappings.documents import (
    Schema,
    child_path,
    json_date,
    json_decimal,
    json_field,
    optional_text,
    parse_json,
    parse_xml,
    required,
    required_text,
    serialize_json,
    serialize_xml,
)
from mappings.errors import MappingError

FA3 = "http://crd.gov.pl/wzor/2025/06/25/13775/"
SALES_INVOICE = "urn:hub:legacy:finanse:faktura-sprzedazy:1"
PURCHASE_RECORD = "urn:hub:legacy:finanse:faktura-zakupu:1"

KSEF_XSD_DIR = Path(__file__).resolve().parents[1] / "wsdl" / "ksef"
_TYPES_URL = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"
#: FA(3) imports its base types by absolute URL; they resolve to the local copies, never
#: over the network.
FA3_SCHEMA = Schema(
    KSEF_XSD_DIR / "schemat_FA(3)_v1-0E.xsd",
    locations={
        f"{_TYPES_URL}StrukturyDanych_v10-0E.xsd": KSEF_XSD_DIR
        / "bazowe"
        / "StrukturyDanych_v10-0E.xsd",
    },
)
NS = {"fa": FA3}

CENT = Decimal("0.01")

#: Our VAT rate → (FA(3) net field, VAT field or None, P_12 code).
RATE_FIELDS: dict[str, tuple[str, str | None, str]] = {
    "23": ("P_13_1", "P_14_1", "23"),
    "8": ("P_13_2", "P_14_2", "8"),
    "5": ("P_13_3", "P_14_3", "5"),
    "0": ("P_13_6_1", None, "0 KR"),
    "zw": ("P_13_7", None, "zw"),
}
#: Every FA(3) net-sum field, in schema order, with the rate it stands for and its VAT field.
NET_FIELDS: tuple[tuple[str, str, str | None], ...] = (
    ("P_13_1", "23", "P_14_1"),
    ("P_13_2", "8", "P_14_2"),
    ("P_13_3", "5", "P_14_3"),
    ("P_13_4", "4", "P_14_4"),
    ("P_13_5", "oss", "P_14_5"),
    ("P_13_6_1", "0 KR", None),
    ("P_13_6_2", "0 WDT", None),
    ("P_13_6_3", "0 EX", None),
    ("P_13_7", "zw", None),
    ("P_13_8", "np I", None),
    ("P_13_9", "np II", None),
    ("P_13_10", "oo", None),
    ("P_13_11", "marza", None),
)
PAYMENT_METHODS = {"cash": "1", "card": "2", "transfer": "6"}
PAYMENT_METHOD_NAMES = {
    "1": "cash",
    "2": "card",
    "3": "voucher",
    "4": "cheque",
    "5": "credit",
    "6": "transfer",
    "7": "mobile",
}


# --- finance system → KSeF ------------------------------------------------------------------


def finance_invoice_to_ksef(body: bytes, context: Context) -> bytes:
    """Translate the finance system's sales invoice into a KSeF FA(3) invoice.

    Raises:
        MappingError: a member is missing or malformed, an unknown VAT rate, an exempt
            line without ``exemption_basis``, or a result the FA(3) schema refuses.
    """
    invoice = parse_json(body, schema=SALES_INVOICE)
    lines = _sales_lines(invoice)
    # The default namespace, as the Ministry's samples write it; lxml-stubs reject a None prefix.
    root = etree.Element(_fa("Faktura"), nsmap=cast(Any, {None: FA3}))
    _header(root, invoice)
    _party(root, "Podmiot1", json_field(invoice, "seller", "$", dict), "$.seller")
    buyer = json_field(invoice, "buyer", "$", dict)
    podmiot2 = _party(root, "Podmiot2", buyer, "$.buyer")
    if buyer.get("customer_number"):
        _sub(podmiot2, "NrKlienta", str(buyer["customer_number"]))
    _sub(podmiot2, "JST", "1" if buyer.get("jst_subunit") is True else "2")
    _sub(podmiot2, "GV", "2")
    _invoice_body(root, invoice, lines)
    FA3_SCHEMA.validate(root)
    return serialize_xml(root)


def _fa(local: str) -> str:
    return f"{{{FA3}}}{local}"


def _sub(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, _fa(local))
    if text is not None:
        child.text = text
    return child


def _money(amount: Decimal) -> str:
    return str(amount.quantize(CENT, rounding=ROUND_HALF_UP))


def _sales_lines(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    entries = json_field(invoice, "lines", "$", list)
    if not entries:
        raise MappingError("the invoice has no lines", "$.lines")
    lines = []
    for index, entry in enumerate(entries):
        at = f"$.lines[{index}]"
        if not isinstance(entry, dict):
            raise MappingError("expected an object", at)
        rate = json_field(entry, "vat_rate", at, str)
        if rate not in RATE_FIELDS:
            raise MappingError(
                f"VAT rate {rate!r} is not one of {sorted(RATE_FIELDS)}", f"{at}.vat_rate"
            )
        quantity = json_decimal(entry, "quantity", at)
        price = json_decimal(entry, "unit_net_price", at)
        lines.append(
            {
                "name": json_field(entry, "name", at, str),
                "unit": json_field(entry, "unit", at, str),
                "quantity": quantity,
                "price": price,
                "net": (quantity * price).quantize(CENT, rounding=ROUND_HALF_UP),
                "rate": rate,
            }
        )
    if any(line["rate"] == "zw" for line in lines) and not invoice.get("exemption_basis"):
        raise MappingError(
            "an exempt (zw) line needs the legal basis of the exemption", "$.exemption_basis"
        )
    return lines


def _header(root: etree._Element, invoice: dict[str, Any]) -> None:
    header = _sub(root, "Naglowek")
    code = _sub(header, "KodFormularza", "FA")
    code.set("kodSystemowy", "FA (3)")
    code.set("wersjaSchemy", "1-0E")
    _sub(header, "WariantFormularza", "3")
    _sub(header, "DataWytworzeniaFa", json_field(invoice, "created_at", "$", str))
    _sub(header, "SystemInfo", "regional-hub")


def _party(root: etree._Element, local: str, party: dict[str, Any], at: str) -> etree._Element:
    element = _sub(root, local)
    identity = _sub(element, "DaneIdentyfikacyjne")
    _sub(identity, "NIP", json_field(party, "nip", at, str))
    _sub(identity, "Nazwa", json_field(party, "name", at, str))
    address = json_field(party, "address", at, dict)
    postal = _sub(element, "Adres")
    _sub(postal, "KodKraju", "PL")
    _sub(postal, "AdresL1", json_field(address, "line1", f"{at}.address", str))
    if address.get("line2"):
        _sub(postal, "AdresL2", str(address["line2"]))
    if party.get("email"):
        _sub(_sub(element, "DaneKontaktowe"), "Email", str(party["email"]))
    return element


def _invoice_body(
    root: etree._Element, invoice: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    fa = _sub(root, "Fa")
    _sub(fa, "KodWaluty", json_field(invoice, "currency", "$", str))
    _sub(fa, "P_1", json_date(invoice, "issued_on", "$").isoformat())
    if invoice.get("place"):
        _sub(fa, "P_1M", str(invoice["place"]))
    _sub(fa, "P_2", json_field(invoice, "number", "$", str))
    if invoice.get("sale_date"):
        _sub(fa, "P_6", json_date(invoice, "sale_date", "$").isoformat())
    gross = _rate_sums(fa, lines)
    _sub(fa, "P_15", _money(gross))
    _annotations(fa, invoice)
    _sub(fa, "RodzajFaktury", "VAT")
    for number, line in enumerate(lines, start=1):
        _line(fa, number, line)
    _payment(fa, json_field(invoice, "payment", "$", dict))


def _rate_sums(fa: etree._Element, lines: Sequence[dict[str, Any]]) -> Decimal:
    """Write P_13_x / P_14_x per rate present, in schema order; return the gross total."""
    gross = Decimal(0)
    for rate, (net_field, vat_field, _) in sorted(RATE_FIELDS.items(), key=_schema_order):
        net = sum((line["net"] for line in lines if line["rate"] == rate), Decimal(0))
        if not any(line["rate"] == rate for line in lines):
            continue
        _sub(fa, net_field, _money(net))
        vat = Decimal(0)
        if vat_field is not None:
            # VAT on the rate's net sum, not line by line (art. 106e ust. 1 pkt 14 VAT act).
            vat = (net * Decimal(rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            _sub(fa, vat_field, _money(vat))
        gross += net + vat
    return gross


def _schema_order(item: tuple[str, tuple[str, str | None, str]]) -> int:
    return [field for field, _, _ in NET_FIELDS].index(item[1][0])


def _annotations(fa: etree._Element, invoice: dict[str, Any]) -> None:
    annotations = _sub(fa, "Adnotacje")
    _sub(annotations, "P_16", "2")  # not cash accounting
    _sub(annotations, "P_17", "2")  # not self-billing
    _sub(annotations, "P_18", "2")  # not reverse charge
    _sub(annotations, "P_18A", "1" if invoice.get("split_payment") is True else "2")
    exemption = _sub(annotations, "Zwolnienie")
    if invoice.get("exemption_basis"):
        _sub(exemption, "P_19", "1")
        _sub(exemption, "P_19A", str(invoice["exemption_basis"]))
    else:
        _sub(exemption, "P_19N", "1")
    _sub(_sub(annotations, "NoweSrodkiTransportu"), "P_22N", "1")
    _sub(annotations, "P_23", "2")  # not a simplified triangular procedure
    _sub(_sub(annotations, "PMarzy"), "P_PMarzyN", "1")


def _line(fa: etree._Element, number: int, line: dict[str, Any]) -> None:
    row = _sub(fa, "FaWiersz")
    _sub(row, "NrWierszaFa", str(number))
    _sub(row, "P_7", line["name"])
    _sub(row, "P_8A", line["unit"])
    _sub(row, "P_8B", _plain(line["quantity"]))
    _sub(row, "P_9A", _price(line["price"]))
    _sub(row, "P_11", _money(line["net"]))
    _sub(row, "P_12", RATE_FIELDS[line["rate"]][2])


def _plain(number: Decimal) -> str:
    """A decimal without exponent or needless trailing zeros (FA(3) allows up to 6-8 places)."""
    text = f"{number:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _price(price: Decimal) -> str:
    """A unit price in grosze when it has no finer part, else as precise as given."""
    return _money(price) if price == price.quantize(CENT) else _plain(price)


def _payment(fa: etree._Element, payment: dict[str, Any]) -> None:
    element = _sub(fa, "Platnosc")
    _sub(
        _sub(element, "TerminPlatnosci"),
        "Termin",
        json_date(payment, "due_date", "$.payment").isoformat(),
    )
    method = json_field(payment, "method", "$.payment", str)
    if method not in PAYMENT_METHODS:
        raise MappingError(
            f"payment method {method!r} is not one of {sorted(PAYMENT_METHODS)}", "$.payment.method"
        )
    _sub(element, "FormaPlatnosci", PAYMENT_METHODS[method])
    if payment.get("account"):
        _sub(_sub(element, "RachunekBankowy"), "NrRB", str(payment["account"]).replace(" ", ""))


# --- KSeF → finance system ------------------------------------------------------------------


def ksef_invoice_to_finance(body: bytes, context: Context) -> bytes:
    """Translate an FA(3) invoice from KSeF into the finance system's purchase record.

    Raises:
        MappingError: not an FA(3) invoice, invalid against the XSD, or a gross total
            that is not its net plus VAT sums.
    """
    invoice = parse_xml(body, namespace=FA3, root="Faktura")
    FA3_SCHEMA.validate(invoice)
    fa = required(invoice, "fa:Fa", NS)
    vat = _vat_breakdown(fa)
    net_total = sum((Decimal(entry["net"]) for entry in vat), Decimal(0))
    vat_total = sum((Decimal(entry["vat"]) for entry in vat), Decimal(0))
    gross_total = Decimal(required_text(fa, "fa:P_15", NS))
    if net_total + vat_total != gross_total:
        raise MappingError(
            f"gross total {gross_total} is not net {net_total} plus VAT {vat_total}",
            child_path(fa, "fa:P_15"),
        )
    record = {
        "schema": PURCHASE_RECORD,
        "ksef_number": context.get("ksef-number") or None,
        "number": required_text(fa, "fa:P_2", NS),
        "issued_on": required_text(fa, "fa:P_1", NS),
        "sale_date": optional_text(fa, "fa:P_6", NS),
        "currency": required_text(fa, "fa:KodWaluty", NS),
        "seller": _seller(required(invoice, "fa:Podmiot1", NS)),
        "buyer": _buyer(required(invoice, "fa:Podmiot2", NS)),
        "net_total": _money(net_total),
        "vat_total": _money(vat_total),
        "gross_total": _money(gross_total),
        "vat": vat,
        "lines": [_purchase_line(row) for row in fa.findall("fa:FaWiersz", NS)],
        "payment": _purchase_payment(fa.find("fa:Platnosc", NS)),
    }
    return serialize_json(record)


def _vat_breakdown(fa: etree._Element) -> list[dict[str, str]]:
    breakdown = []
    for net_field, rate, vat_field in NET_FIELDS:
        net = optional_text(fa, f"fa:{net_field}", NS)
        if net is None:
            continue
        vat = optional_text(fa, f"fa:{vat_field}", NS) if vat_field else None
        breakdown.append(
            {"rate": rate, "net": _money(Decimal(net)), "vat": _money(Decimal(vat or "0"))}
        )
    return breakdown


def _seller(podmiot: etree._Element) -> dict[str, Any]:
    address = podmiot.find("fa:Adres", NS)
    lines = [] if address is None else [optional_text(address, f"fa:AdresL{n}", NS) for n in (1, 2)]
    return {
        "nip": required_text(podmiot, "fa:DaneIdentyfikacyjne/fa:NIP", NS),
        "name": required_text(podmiot, "fa:DaneIdentyfikacyjne/fa:Nazwa", NS),
        "address": [line for line in lines if line],
    }


def _buyer(podmiot: etree._Element) -> dict[str, Any]:
    return {
        "nip": optional_text(podmiot, "fa:DaneIdentyfikacyjne/fa:NIP", NS),
        "name": optional_text(podmiot, "fa:DaneIdentyfikacyjne/fa:Nazwa", NS),
    }


def _purchase_line(row: etree._Element) -> dict[str, Any]:
    return {
        "no": int(required_text(row, "fa:NrWierszaFa", NS)),
        "name": optional_text(row, "fa:P_7", NS),
        "unit": optional_text(row, "fa:P_8A", NS),
        "quantity": optional_text(row, "fa:P_8B", NS),
        "unit_net_price": optional_text(row, "fa:P_9A", NS),
        "net": optional_text(row, "fa:P_11", NS),
        "vat_rate": optional_text(row, "fa:P_12", NS),
    }


def _purchase_payment(payment: etree._Element | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    method = optional_text(payment, "fa:FormaPlatnosci", NS)
    return {
        "paid": optional_text(payment, "fa:Zaplacono", NS) == "1",
        "paid_on": optional_text(payment, "fa:DataZaplaty", NS),
        "due_dates": [
            " ".join((due.text or "").split())
            for due in payment.findall("fa:TerminPlatnosci/fa:Termin", NS)
        ],
        "method": PAYMENT_METHOD_NAMES.get(method or ""),
        "accounts": [
            " ".join((account.text or "").split())
            for account in payment.findall("fa:RachunekBankowy/fa:NrRB", NS)
        ],
    }


MAPPINGS = (
    Mapping(
        name="finance-invoice-to-ksef",
        source_type=SALES_INVOICE,
        source_content_type=JSON,
        target_type=FA3,
        target_content_type=XML,
        translate=finance_invoice_to_ksef,
        description="finance system's sales invoice → KSeF FA(3) invoice (XSD-validated)",
    ),
    Mapping(
        name="ksef-invoice-to-finance",
        source_type=FA3,
        source_content_type=XML,
        target_type=PURCHASE_RECORD,
        target_content_type=JSON,
        translate=ksef_invoice_to_finance,
        description="KSeF FA(3) invoice → finance system's purchase record",
    ),
)
