"""The official receipts ePUAP issues for sent documents, built and XAdES-signed.

* UPP (Urzędowe Poświadczenie Przedłożenia): the platform certifies that a document was
  submitted through ``skrytka.nadaj``; it travels back in the answer's ``zalacznik``.
* UPD (Urzędowe Poświadczenie Doręczenia): the platform certifies that the addressee
  picked up a document sent through ``doreczyciel.dorecz``; it lands in the sender's
  reply skrytka.

Both are ``pos:Dokument`` documents in the UPO namespace, shaped as
``wsdl/epuap/upo-hub.xsd`` (the hub's own rendering of the public structure) describes,
and carry an enveloped XAdES-BES signature of the simulator's identity.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

from hub.signing.keystore import SigningIdentity
from hub.signing.xades import sign_document
from simulators.identity import PlatformIdentity

__all__ = [
    "INFO_SKROT_DOKUMENTU",
    "PLATFORM_IDENTITY",
    "TYP_IDENTYFIKATORA_EPUAP",
    "UPO_NS",
    "UPO_XSD",
    "Podmiot",
    "ReceiptSigner",
    "Upd",
    "Upp",
    "render_upd",
    "render_upp",
    "sha256_b64",
    "upo_schema",
]

UPO_NS = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
UPO_XSD = Path(__file__).resolve().parents[2] / "wsdl" / "epuap" / "upo-hub.xsd"
#: TypInformacjiUzupelniajacej of the base64 SHA-256 of the document a receipt is about.
INFO_SKROT_DOKUMENTU = "SkrotDokumentu"
#: TypIdentyfikatora for ePUAP account ids; ePUAP's own value list is not published here.
TYP_IDENTYFIKATORA_EPUAP = "ID_EPUAP"
#: Name of the identity a keystore holds for the simulated platform.
PLATFORM_IDENTITY = "epuap"
# Receipts state the civil (Warsaw) time, as the platform's documents do.
_WARSAW = ZoneInfo("Europe/Warsaw")


@dataclass(frozen=True)
class Podmiot:
    """A party named in a receipt: its name and its ePUAP identifier."""

    nazwa: str
    identyfikator: str
    typ_identyfikatora: str = TYP_IDENTYFIKATORA_EPUAP


@dataclass(frozen=True)
class Upp:
    """The facts of one UPP, issued when ``skrytka.nadaj`` accepts a document."""

    identyfikator_poswiadczenia: str
    adresat: Podmiot
    nadawca: Podmiot
    data_doreczenia: datetime
    data_wytworzenia: datetime
    identyfikator_dokumentu: str
    skrot_dokumentu: str


@dataclass(frozen=True)
class Upd:
    """The facts of one UPD, issued when the addressee picks up a ``dorecz`` document."""

    identyfikator_poswiadczenia: str
    wystawca: Podmiot
    adresat: Podmiot
    data_odbioru: datetime
    data_utworzenia: datetime
    identyfikator_sprawy: str
    identyfikator_dokumentu: str
    skrot_dokumentu: str


def sha256_b64(content: bytes) -> str:
    """Return base64 of the SHA-256 of ``content``: how a receipt names its document."""
    return base64.b64encode(hashlib.sha256(content).digest()).decode("ascii")


def render_upp(upp: Upp) -> bytes:
    """Return the unsigned ``pos:Dokument/pos:UPP`` XML of ``upp``."""
    dokument, body = _receipt_root("UPP")
    _text(body, "IdentyfikatorPoswiadczenia", upp.identyfikator_poswiadczenia)
    _podmiot(body, "Adresat", upp.adresat)
    _podmiot(body, "Nadawca", upp.nadawca)
    _text(body, "DataDoreczenia", _xml_datetime(upp.data_doreczenia))
    _text(body, "DataWytworzeniaPoswiadczenia", _xml_datetime(upp.data_wytworzenia))
    _text(body, "IdentyfikatorDokumentu", upp.identyfikator_dokumentu)
    _informacja(body, INFO_SKROT_DOKUMENTU, upp.skrot_dokumentu)
    return etree.tostring(dokument, xml_declaration=True, encoding="UTF-8")


def render_upd(upd: Upd) -> bytes:
    """Return the unsigned ``pos:Dokument/pos:UPD`` XML of ``upd``."""
    dokument, body = _receipt_root("UPD")
    _text(body, "IdentyfikatorPoswiadczenia", upd.identyfikator_poswiadczenia)
    _podmiot(body, "PodmiotWystawiajacyPoswiadczenie", upd.wystawca)
    _podmiot(body, "Adresat", upd.adresat)
    _text(body, "DataOdbioru", _xml_datetime(upd.data_odbioru))
    _text(body, "DataUtworzeniaPoswiadczenia", _xml_datetime(upd.data_utworzenia))
    _text(body, "IdentyfikatorSprawy", upd.identyfikator_sprawy)
    _text(body, "IdentyfikatorDokumentu", upd.identyfikator_dokumentu)
    _informacja(body, INFO_SKROT_DOKUMENTU, upd.skrot_dokumentu)
    return etree.tostring(dokument, xml_declaration=True, encoding="UTF-8")


def upo_schema() -> etree.XMLSchema:
    """Return ``upo-hub.xsd``, compiled (a new object: validation is not thread-safe)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(UPO_XSD), parser))


def _receipt_root(kind: str) -> tuple[etree._Element, etree._Element]:
    """Return a new ``pos:Dokument`` and its ``pos:{kind}`` child."""
    dokument = etree.Element(f"{{{UPO_NS}}}Dokument", nsmap={"pos": UPO_NS})
    return dokument, etree.SubElement(dokument, f"{{{UPO_NS}}}{kind}")


def _text(parent: etree._Element, name: str, value: str) -> etree._Element:
    """Append ``pos:{name}`` holding ``value``."""
    element = etree.SubElement(parent, f"{{{UPO_NS}}}{name}")
    element.text = value
    return element


def _podmiot(parent: etree._Element, name: str, podmiot: Podmiot) -> None:
    """Append ``pos:{name}`` with the party's Nazwa and IdentyfikatorPodmiotu."""
    element = etree.SubElement(parent, f"{{{UPO_NS}}}{name}")
    _text(element, "Nazwa", podmiot.nazwa)
    identyfikator = _text(element, "IdentyfikatorPodmiotu", podmiot.identyfikator)
    identyfikator.set("TypIdentyfikatora", podmiot.typ_identyfikatora)


def _informacja(parent: etree._Element, typ: str, value: str) -> None:
    """Append one ``pos:InformacjaUzupelniajaca`` of type ``typ``."""
    _text(parent, "InformacjaUzupelniajaca", value).set("TypInformacjiUzupelniajacej", typ)


def _xml_datetime(moment: datetime) -> str:
    """Return ``moment`` as Warsaw civil time with milliseconds and offset (xs:dateTime)."""
    return moment.astimezone(_WARSAW).isoformat(timespec="milliseconds")


class ReceiptSigner(PlatformIdentity):
    """The simulated platform's signing identity, and the receipts it signs.

    Without a configured identity (no ``--keystore``) the simulator makes a throwaway
    test CA and identity on first use, so receipts are always signed, as ePUAP's are; a
    client that wants to verify them can read the certificates from ``GET /_sim/identity``.
    """

    def __init__(self, identity: SigningIdentity | None, ca_certificate_pem: bytes | None) -> None:
        """Sign as ``identity`` (None: a throwaway one made when first needed)."""
        super().__init__(PLATFORM_IDENTITY, identity, ca_certificate_pem)
        self._schema = upo_schema()
        # One libxml2 schema object keeps one error log: validate one receipt at a time.
        self._schema_lock = threading.Lock()

    def sign(self, receipt: bytes) -> bytes:
        """Return ``receipt`` with the platform's enveloped XAdES-BES signature.

        Raises:
            etree.DocumentInvalid: the signed receipt breaks ``upo-hub.xsd``; that is a
                bug of the simulator, so it fails loudly rather than emit it.
        """
        signed = sign_document(receipt, self.identity())
        parsed = etree.fromstring(signed, etree.XMLParser(resolve_entities=False, no_network=True))
        with self._schema_lock:
            self._schema.assertValid(parsed)
        return signed
