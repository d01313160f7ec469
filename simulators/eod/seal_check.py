"""How the simulated EOD checks the hub's seal, as a system built elsewhere would.

It shares no code with the hub's signing: python-xmlsec (libxmlsec1) checks the XML
signature, ``cryptography`` checks that the signing certificate was issued by the CA the
EOD was told to trust. The document is taken from the sealed envelope only after both
hold.
"""

from __future__ import annotations

import base64
import hashlib

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

SEAL_NAMESPACE = "urn:regional-hub:delivery:1"
SEALED_CONTENT_TYPE = "application/vnd.regional-hub.delivery+xml"
DS = "http://www.w3.org/2000/09/xmldsig#"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class SealRejected(Exception):
    """The delivery's seal does not hold; the reason says why."""


def unseal(body: bytes, trusted_ca_pem: bytes) -> bytes:
    """The document inside a sealed delivery, after checking the seal."""
    try:
        root = etree.fromstring(body, parser=PARSER)
    except etree.XMLSyntaxError as exc:
        raise SealRejected(f"the delivery is not XML: {exc}") from exc
    signature = root.find(f"{{{DS}}}Signature")
    if root.tag != f"{{{SEAL_NAMESPACE}}}Delivery" or signature is None:
        raise SealRejected("the delivery carries no seal")
    uris = [ref.get("URI") for ref in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")]
    if not uris or uris[0] != "":
        raise SealRejected("the seal does not cover the whole delivery")
    certificate = _certificate(signature)
    _require_issued_by(certificate, x509.load_pem_x509_certificate(trusted_ca_pem))
    _verify_signature(root, signature, certificate)
    return _document(root)


def opened(body: bytes) -> bytes:
    """The document inside a sealed delivery, without checking the seal (no CA to trust)."""
    try:
        return _document(etree.fromstring(body, parser=PARSER))
    except etree.XMLSyntaxError as exc:
        raise SealRejected(f"the delivery is not XML: {exc}") from exc


def _certificate(signature: etree._Element) -> x509.Certificate:
    encoded = signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
    if not encoded:
        raise SealRejected("the seal carries no certificate")
    return x509.load_der_x509_certificate(base64.b64decode("".join(encoded.split())))


def _require_issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> None:
    public_key = authority.public_key()
    hash_algorithm = certificate.signature_hash_algorithm
    if not isinstance(public_key, rsa.RSAPublicKey) or hash_algorithm is None:
        raise SealRejected("the trusted CA's key is not RSA")
    try:
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            hash_algorithm,
        )
    except InvalidSignature as exc:
        raise SealRejected("the seal's certificate is not issued by the trusted CA") from exc


def _verify_signature(
    root: etree._Element, signature: etree._Element, certificate: x509.Certificate
) -> None:
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(
        certificate.public_bytes(Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
    )
    for node in root.iter():
        if node.get("Id"):
            context.register_id(node, "Id")
    try:
        context.verify(signature)
    except xmlsec.Error as exc:
        raise SealRejected(f"the seal does not verify: {exc}") from exc


def _document(root: etree._Element) -> bytes:
    element = root.find(f"{{{SEAL_NAMESPACE}}}Document")
    if element is None:
        raise SealRejected("the sealed delivery carries no Document")
    document = base64.b64decode(element.text or "")
    if hashlib.sha256(document).hexdigest() != element.get("sha256"):
        raise SealRejected("the document does not match its SHA-256")
    return document
