"""XAdES-BES enveloped signatures (ETSI EN 319 132-1) with signxml: sign and verify documents.

Signatures use RSA-SHA256 with SHA-256 digests and signxml's default canonicalization
(C14N 1.1): signxml 5.2's XAdES signer makes invalid signatures with exclusive
canonicalization. A document counts as signed only when a valid signature covers the
whole document (a reference to ``""``), and callers use only what the verifier
returns as signed, never what they find by searching the document again.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.xades.xades import XAdESSigner, XAdESVerifier

from hub.errors import SignatureInvalid
from hub.signing.keystore import SigningIdentity
from hub.signing.trust import TrustStore
from hub.xml import parse_document

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a valid signature proves: who signed, when, with which certificate, and what."""

    signer: str
    certificate_serial: int
    signed_at: datetime.datetime | None
    signed_document: etree._Element
    signature: etree._Element | None = None


def sign_document(document: bytes, identity: SigningIdentity) -> bytes:
    """Return ``document`` with an enveloped XAdES-BES signature of ``identity`` added."""
    root = parse_document(document)
    signer = XAdESSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256
    )
    signed = signer.sign(root, key=identity.private_key, cert=[identity.certificate])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_document(document: bytes, trust: TrustStore) -> VerifiedSignature:
    """Verify the enveloped XAdES signature over the whole of ``document``.

    Raises:
        SignatureInvalid: unsigned, signed by an untrusted or expired certificate, not
            covering the whole document, or not matching the content.
    """
    root = parse_document(document)
    signature = root.find(f"{{{DS}}}Signature")
    if signature is None:
        raise SignatureInvalid("the document carries no enveloped ds:Signature")
    _require_whole_document_reference(signature)
    certificate = _signer_certificate(signature)
    signed_at = _signing_time(signature)
    trust.check(certificate, signed_at or datetime.datetime.now(datetime.UTC))
    try:
        # The references: the document, the signed properties, the signer's certificate.
        results = XAdESVerifier().verify(root, x509_cert=certificate)
    except (InvalidSignature, InvalidInput) as exc:
        raise SignatureInvalid(f"the signature does not verify: {exc}") from exc
    signed_document = results[0].signed_xml
    if signed_document is None or signed_document.tag != root.tag:
        raise SignatureInvalid("the signature's first reference is not the document itself")
    return VerifiedSignature(
        signer=certificate.subject.rfc4514_string(),
        certificate_serial=certificate.serial_number,
        signed_at=signed_at,
        signed_document=signed_document,
        signature=signature,
    )


def _require_whole_document_reference(signature: etree._Element) -> None:
    uris = [
        reference.get("URI")
        for reference in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    ]
    if "" not in uris:
        # A signature over a fragment says nothing about the rest of the document.
        raise SignatureInvalid("the signature does not cover the whole document")


def _signer_certificate(signature: etree._Element) -> x509.Certificate:
    encoded = signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not encoded:
        raise SignatureInvalid("the signature carries no X.509 certificate")
    try:
        return x509.load_pem_x509_certificate(
            b"-----BEGIN CERTIFICATE-----\n"
            + "".join(encoded.split()).encode()
            + b"\n-----END CERTIFICATE-----\n"
        )
    except ValueError as exc:
        raise SignatureInvalid(f"the signer's certificate is unreadable: {exc}") from exc


def _signing_time(signature: etree._Element) -> datetime.datetime | None:
    text = signature.findtext(f".//{{{XADES}}}SigningTime")
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureInvalid(f"the XAdES SigningTime {text!r} is unreadable") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
