"""Signing throughput: the hub's XAdES and WS-Security code next to the raw primitives.

For two CRWDE-like documents (a ``wnio:Dokument`` "pismo ogólne" with a base64
``str:Zalacznik``, about 5 KB and about 500 KB) it measures, in one run:

- XAdES-BES signatures/s and verifications/s through ``hub.signing.xades``;
- lxml parses/s of the same document;
- WS-Security signatures/s and verifications/s of a small SOAP envelope through
  ``hub.signing.wssecurity`` (each operation parses a fresh copy of the envelope, so
  the parse is included);
- the raw ``cryptography`` rates: RSA-2048 PKCS#1 v1.5 SHA-256 signatures/s and
  verifications/s over 32 bytes, and SHA-256 MB/s (10^6 bytes) over a 1 MiB buffer;
- the ratios hub ÷ raw RSA, which say how much of the hub's cost is the RSA operation.

Every measurement makes one warm-up call, then counts operations in a loop until
``--seconds`` have passed (at least one operation). The keys come from a throw-away
test keystore (``init_keystore``) in a temporary directory.

    .venv/bin/python benchmarks/signing.py --seconds 3 [--json]

Benchmarks print figures; they never assert timings. Compare the ratios between runs,
not the absolute rates: those depend on the machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from hub.signing.keystore import Keystore, SigningIdentity, init_keystore
from hub.signing.trust import TrustStore
from hub.signing.wssecurity import sign_envelope, signing_key, verify_envelope
from hub.signing.xades import sign_document, verify_document

WNIO = "http://crd.gov.pl/wzor/2013/12/12/1410/"
NS = {
    "wnio": WNIO,
    "meta": "http://crd.gov.pl/xml/schematy/meta/2009/11/16/",
    "str": "http://crd.gov.pl/xml/schematy/struktura/2009/11/16/",
    "adr": "http://crd.gov.pl/xml/schematy/adres/2009/11/09/",
    "oso": "http://crd.gov.pl/xml/schematy/osoba/2009/11/16/",
    "inst": "http://crd.gov.pl/xml/schematy/instytucja/2009/11/16/",
}
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
IDENTITY_NAME = "146501_1"
DOCUMENT_SIZES: tuple[tuple[str, int], ...] = (("5 KB", 5 * 1024), ("500 KB", 500 * 1024))
RSA_MESSAGE_BYTES = 32
HASH_BUFFER_BYTES = 1024 * 1024
MB = 1_000_000
SEED = 2026
LETTER = (
    "Zwracam się z uprzejmą prośbą o wydanie zaświadczenia o zameldowaniu na pobyt stały "
    "pod wskazanym adresem. Zaświadczenie jest mi potrzebne w postępowaniu prowadzonym "
    "przez bank w sprawie kredytu hipotecznego. Proszę o przesłanie odpowiedzi na moją "
    "skrytkę ePUAP. W załączeniu przekazuję skan potwierdzenia wniesienia opłaty skarbowej."
)
ENVELOPE = (
    f'<soapenv:Envelope xmlns:soapenv="{SOAP}" xmlns:tns="http://ws.epuap.gov.pl/">'
    "<soapenv:Header/><soapenv:Body><tns:pobierzNastepny>"
    "<tns:podmiot>146501_1</tns:podmiot><tns:nazwaSkrytki>skrytka</tns:nazwaSkrytki>"
    "<tns:adresSkrytki>/146501_1/skrytka</tns:adresSkrytki>"
    "</tns:pobierzNastepny></soapenv:Body></soapenv:Envelope>"
).encode()


@dataclass(frozen=True)
class Rate:
    """Operations counted in a time-boxed loop."""

    operations: int
    elapsed_s: float

    @property
    def per_s(self) -> float:
        """Operations per second."""
        return self.operations / self.elapsed_s


@dataclass(frozen=True)
class DocumentFigures:
    """The figures measured for one document size."""

    label: str
    document_bytes: int
    signed_bytes: int
    xades_sign: Rate
    xades_verify: Rate
    lxml_parse: Rate


@dataclass(frozen=True)
class RawFigures:
    """The raw primitives of the ``cryptography`` library."""

    rsa_sign: Rate
    rsa_verify: Rate
    sha256_buffer_bytes: int
    sha256: Rate

    @property
    def sha256_mb_per_s(self) -> float:
        """SHA-256 throughput in MB (10^6 bytes) per second."""
        return self.sha256.per_s * self.sha256_buffer_bytes / MB


@dataclass(frozen=True)
class WsSecurityFigures:
    """WS-Security signing and verification of a small SOAP envelope."""

    envelope_bytes: int
    signed_bytes: int
    sign: Rate
    verify: Rate


@dataclass(frozen=True)
class Report:
    """Everything one run measured."""

    seconds: float
    versions: dict[str, str]
    documents: list[DocumentFigures]
    wssecurity: WsSecurityFigures
    raw: RawFigures


@dataclass(frozen=True)
class Keys:
    """The identity that signs and the trust that verifies it."""

    identity: SigningIdentity
    trust: TrustStore
    ca_pem: bytes


# --- measuring ---------------------------------------------------------------------


def measure(operation: Callable[[], object], seconds: float) -> Rate:
    """Call ``operation`` once to warm up, then count calls until ``seconds`` have passed."""
    operation()
    operations = 0
    start = time.perf_counter()
    while True:
        operation()
        operations += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return Rate(operations, elapsed)


@contextmanager
def office_keys() -> Iterator[Keys]:
    """A throw-away keystore with one office identity, and a trust store of its CA."""
    with tempfile.TemporaryDirectory(prefix="hub-bench-signing-") as directory:
        path = Path(directory) / "keys"
        init_keystore(path, [IDENTITY_NAME], ca_dir=Path(directory) / "ca")
        keystore = Keystore(path)
        ca_pem = keystore.ca_certificate_pem()
        yield Keys(keystore.identity(IDENTITY_NAME), TrustStore.from_pems([ca_pem]), ca_pem)


# --- documents ---------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """Append the child ``prefix:name`` to ``parent``, with ``text`` if given."""
    prefix, name = tag.split(":")
    child = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}")
    child.text = text
    return child


def _document_skeleton() -> tuple[etree._Element, etree._Element]:
    """A pismo ogólne without attachment data; returns the root and the empty data node."""
    root = etree.Element(f"{{{WNIO}}}Dokument", nsmap=NS)
    opis = _sub(root, "wnio:OpisDokumentu")
    _sub(opis, "meta:Data", "2026-03-02").set("typDaty", "utworzony")
    dane = _sub(root, "wnio:DaneDokumentu")
    _sub(_sub(dane, "str:Naglowek"), "str:NazwaDokumentu", "Pismo ogólne do podmiotu publicznego")
    adresat = _sub(_sub(dane, "meta:Adresat"), "inst:Instytucja")
    _sub(adresat, "inst:NazwaInstytucji", "Urząd Miasta Stołecznego Warszawy")
    nadawca = _sub(_sub(_sub(dane, "meta:Nadawca"), "oso:Osoba"), "oso:IdOsoby")
    _sub(nadawca, "oso:PESEL", "85010112345")
    _sub(nadawca, "oso:Imie", "Katarzyna")
    _sub(nadawca, "oso:Nazwisko", "Wiśniewska")
    tresc = _sub(root, "wnio:TrescDokumentu")
    tresc.set("format", "text/xml")
    tresc.set("kodowanie", "XML")
    wartosc = _sub(tresc, "wnio:Wartosc")
    _sub(wartosc, "wnio:MiejscowoscDokumentu", "Warszawa")
    _sub(wartosc, "wnio:Tytul", "Wniosek o wydanie zaświadczenia o zameldowaniu")
    _sub(wartosc, "wnio:Tresc", f"{LETTER}\n\n{LETTER}\n\nZ poważaniem\nKatarzyna Wiśniewska")
    zalacznik = _sub(_sub(root, "str:Zalaczniki"), "str:Zalacznik")
    zalacznik.set("format", "application/pdf")
    zalacznik.set("kodowanie", "base64")
    zalacznik.set("nazwaPliku", "potwierdzenie_oplaty.pdf")
    return root, _sub(zalacznik, "str:DaneZalacznika")


def _serialise(root: etree._Element) -> bytes:
    """The document as UTF-8 with an XML declaration, as ePUAP hands it over."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def build_document(target_bytes: int, seed: int = SEED) -> bytes:
    """A CRWDE-like pismo ogólne whose base64 attachment brings it to about ``target_bytes``."""
    root, data = _document_skeleton()
    room = max(target_bytes - len(_serialise(root)), 4)
    attachment = random.Random(seed).randbytes(room * 3 // 4)
    data.text = base64.b64encode(attachment).decode("ascii")
    return _serialise(root)


# --- the measurements --------------------------------------------------------------


def measure_document(label: str, target_bytes: int, keys: Keys, seconds: float) -> DocumentFigures:
    """XAdES sign and verify rates, and the lxml parse rate, for one document size."""
    document = build_document(target_bytes)
    signed = sign_document(document, keys.identity)
    verify_document(signed, keys.trust)  # a signature that does not verify stops the run
    return DocumentFigures(
        label=label,
        document_bytes=len(document),
        signed_bytes=len(signed),
        xades_sign=measure(lambda: sign_document(document, keys.identity), seconds),
        xades_verify=measure(lambda: verify_document(signed, keys.trust), seconds),
        lxml_parse=measure(lambda: etree.fromstring(document), seconds),
    )


def _signed_envelope(key: Any) -> bytes:
    """A freshly parsed copy of the small envelope, signed and serialised."""
    envelope = etree.fromstring(ENVELOPE)
    sign_envelope(envelope, key)
    return etree.tostring(envelope)


def measure_wssecurity(keys: Keys, seconds: float) -> WsSecurityFigures:
    """WS-Security sign and verify rates; every operation parses a fresh envelope."""
    key = signing_key(keys.identity)
    signed = _signed_envelope(key)
    trust = TrustStore.from_pems([keys.ca_pem])
    verify_envelope(etree.fromstring(signed), trust=trust)
    return WsSecurityFigures(
        envelope_bytes=len(ENVELOPE),
        signed_bytes=len(signed),
        sign=measure(lambda: sign_envelope(etree.fromstring(ENVELOPE), key), seconds),
        verify=measure(lambda: verify_envelope(etree.fromstring(signed), trust=trust), seconds),
    )


def _sha256(buffer: bytes) -> bytes:
    """SHA-256 of ``buffer`` through ``cryptography``."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(buffer)
    return digest.finalize()


def measure_raw(keys: Keys, seconds: float) -> RawFigures:
    """Raw RSA-2048 PKCS#1 v1.5 SHA-256 sign/verify over 32 bytes, and SHA-256 throughput."""
    private_key = keys.identity.private_key
    public_key = private_key.public_key()
    message = random.Random(SEED).randbytes(RSA_MESSAGE_BYTES)
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    buffer = random.Random(SEED).randbytes(HASH_BUFFER_BYTES)
    return RawFigures(
        rsa_sign=measure(
            lambda: private_key.sign(message, padding.PKCS1v15(), hashes.SHA256()), seconds
        ),
        rsa_verify=measure(
            lambda: public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256()),
            seconds,
        ),
        sha256_buffer_bytes=len(buffer),
        sha256=measure(lambda: _sha256(buffer), seconds),
    )


def versions() -> dict[str, str]:
    """The versions of Python and of the libraries that do the work."""
    found = {"python": platform.python_version()}
    for package in ("cryptography", "lxml", "signxml", "xmlsec"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "?"
    return found


def run_benchmark(seconds: float) -> Report:
    """Measure everything, in one process, with one set of keys."""
    with office_keys() as keys:
        documents = [measure_document(label, size, keys, seconds) for label, size in DOCUMENT_SIZES]
        wssecurity = measure_wssecurity(keys, seconds)
        raw = measure_raw(keys, seconds)
    return Report(seconds, versions(), documents, wssecurity, raw)


# --- output ------------------------------------------------------------------------


def _ratio(hub_rate: Rate, raw_rate: Rate) -> float:
    """``hub_rate`` ÷ ``raw_rate`` (operations per second)."""
    return hub_rate.per_s / raw_rate.per_s


def _print_documents(report: Report) -> None:
    """The per-document table: XAdES and lxml rates."""
    print(
        f"{'document':<9}{'bytes':>9}{'signed':>9}{'XAdES sign/s':>14}"
        f"{'verify/s':>10}{'lxml parse/s':>14}{'parse MB/s':>12}"
    )
    for figures in report.documents:
        parse_mb_s = figures.lxml_parse.per_s * figures.document_bytes / MB
        print(
            f"{figures.label:<9}{figures.document_bytes:>9,}{figures.signed_bytes:>9,}"
            f"{figures.xades_sign.per_s:>14,.1f}{figures.xades_verify.per_s:>10,.1f}"
            f"{figures.lxml_parse.per_s:>14,.1f}{parse_mb_s:>12,.1f}"
        )


def _print_ratios(report: Report) -> None:
    """Hub rates divided by the raw RSA rates."""
    raw = report.raw
    print(f"{'hub ÷ raw RSA':<24}{'sign/s ÷ RSA sign/s':>21}{'verify/s ÷ RSA verify/s':>25}")
    for figures in report.documents:
        print(
            f"{'XAdES ' + figures.label:<24}{_ratio(figures.xades_sign, raw.rsa_sign):>21.3f}"
            f"{_ratio(figures.xades_verify, raw.rsa_verify):>25.3f}"
        )
    wss = report.wssecurity
    print(
        f"{'WS-Security envelope':<24}{_ratio(wss.sign, raw.rsa_sign):>21.3f}"
        f"{_ratio(wss.verify, raw.rsa_verify):>25.3f}"
    )


def print_table(report: Report) -> None:
    """Print the readable report."""
    versions_line = ", ".join(f"{name} {version}" for name, version in report.versions.items())
    print(f"Signing benchmark, {report.seconds:g} s per measurement ({versions_line})")
    print()
    _print_documents(report)
    wss = report.wssecurity
    print()
    print(
        f"WS-Security ({wss.envelope_bytes} B envelope, {wss.signed_bytes:,} B signed; "
        f"fresh parse included): sign/s {wss.sign.per_s:,.1f}, verify/s {wss.verify.per_s:,.1f}"
    )
    raw = report.raw
    print(
        f"raw cryptography: RSA-2048 PKCS#1 v1.5 SHA-256 over {RSA_MESSAGE_BYTES} B: "
        f"sign/s {raw.rsa_sign.per_s:,.1f}, verify/s {raw.rsa_verify.per_s:,.1f}; "
        f"SHA-256 {raw.sha256_mb_per_s:,.1f} MB/s"
    )
    print()
    _print_ratios(report)


def _rate_json(rate: Rate) -> dict[str, float]:
    """A rate as JSON: operations, seconds and operations per second."""
    return {**asdict(rate), "per_s": rate.per_s}


def report_as_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready dict, ratios included."""
    raw = report.raw
    wss = report.wssecurity
    return {
        "seconds": report.seconds,
        "versions": report.versions,
        "documents": [
            {
                "label": figures.label,
                "document_bytes": figures.document_bytes,
                "signed_bytes": figures.signed_bytes,
                "xades_sign": _rate_json(figures.xades_sign),
                "xades_verify": _rate_json(figures.xades_verify),
                "lxml_parse": _rate_json(figures.lxml_parse),
                "lxml_parse_mb_per_s": figures.lxml_parse.per_s * figures.document_bytes / MB,
                "xades_sign_over_rsa_sign": _ratio(figures.xades_sign, raw.rsa_sign),
                "xades_verify_over_rsa_verify": _ratio(figures.xades_verify, raw.rsa_verify),
            }
            for figures in report.documents
        ],
        "wssecurity": {
            "envelope_bytes": wss.envelope_bytes,
            "signed_bytes": wss.signed_bytes,
            "sign": _rate_json(wss.sign),
            "verify": _rate_json(wss.verify),
            "sign_over_rsa_sign": _ratio(wss.sign, raw.rsa_sign),
            "verify_over_rsa_verify": _ratio(wss.verify, raw.rsa_verify),
        },
        "raw": {
            "rsa_sign": _rate_json(raw.rsa_sign),
            "rsa_verify": _rate_json(raw.rsa_verify),
            "sha256": _rate_json(raw.sha256),
            "sha256_buffer_bytes": raw.sha256_buffer_bytes,
            "sha256_mb_per_s": raw.sha256_mb_per_s,
        },
    }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--seconds`` per measurement and ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="length of each measurement (default 3)"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print one JSON object as the last line"
    )
    arguments = parser.parse_args(argv)
    if arguments.seconds <= 0:
        parser.error("--seconds must be positive")
    return arguments


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table (and, with --json, one JSON line)."""
    arguments = parse_arguments(argv)
    report = run_benchmark(arguments.seconds)
    print_table(report)
    if arguments.json:
        print(json.dumps(report_as_json(report)))


if __name__ == "__main__":
    main()
