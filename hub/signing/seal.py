"""The hub's seal on a delivery to a legacy system: the document in a signed envelope.

A legacy system that receives a document from the hub must be able to prove that the
hub sent it and that nothing changed on the way. The hub wraps the document, with the
ids the receiver needs to file it, in a ``Delivery`` element and signs that with its
own key (XAdES-BES, enveloped)::

    <Delivery xmlns="urn:regional-hub:delivery:1">
      <EnvelopeId>…</EnvelopeId> <CorrelationId>…</CorrelationId>
      <DocumentType>…</DocumentType> <Source>epuap</Source>
      <Destination office="146501_1" system="eod"/> <SealedAt>2026-…Z</SealedAt>
      <Document contentType="application/xml" sha256="…">(base64)</Document>
      <ds:Signature>…</ds:Signature>
    </Delivery>

The document travels base64-encoded rather than as XML inside the envelope: a citizen's
own enveloped signature covers its document's exact bytes, and embedding it as XML
would change what its reference ``""`` means. Any XAdES verifier can check the seal;
``open_seal`` is the hub's own.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from hub.envelope import Envelope
from hub.errors import SignatureInvalid
from hub.signing.keystore import SigningIdentity
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, verify_document

SEAL_NAMESPACE = "urn:regional-hub:delivery:1"
SEALED_CONTENT_TYPE = "application/vnd.regional-hub.delivery+xml"


@dataclass(frozen=True, slots=True)
class OpenedSeal:
    """A verified delivery: the document as the hub sent it, and who sealed it when."""

    document: bytes
    content_type: str
    envelope_id: str
    correlation_id: str
    document_type: str
    sealed_by: str
    sealed_at: datetime | None


def seal(envelope: Envelope, identity: SigningIdentity) -> bytes:
    """The envelope's document and ids in a ``Delivery`` signed by ``identity``."""
    # None is lxml's key for the default namespace; lxml-stubs only allow str keys.
    nsmap = {None: SEAL_NAMESPACE}
    delivery = etree.Element(f"{{{SEAL_NAMESPACE}}}Delivery", nsmap=nsmap)  # type: ignore[arg-type]
    for name, value in (
        ("EnvelopeId", str(envelope.envelope_id)),
        ("CorrelationId", envelope.correlation_id),
        ("DocumentType", envelope.document_type),
        ("Source", envelope.source),
    ):
        _child(delivery, name, value)
    destination = _child(delivery, "Destination")
    destination.set("office", envelope.destination.office)
    destination.set("system", envelope.destination.system)
    _child(delivery, "SealedAt", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    document = _child(delivery, "Document", base64.b64encode(envelope.body).decode("ascii"))
    document.set("contentType", envelope.content_type)
    document.set("sha256", hashlib.sha256(envelope.body).hexdigest())
    return sign_document(etree.tostring(delivery), identity)


def open_seal(sealed: bytes, trust: TrustStore) -> OpenedSeal:
    """Verify a sealed delivery and return what it carries, read from the signed part only.

    Raises:
        SignatureInvalid: the seal is missing, broken or not the hub's, or the document
            does not match its recorded digest.
    """
    verified = verify_document(sealed, trust)
    delivery = verified.signed_document
    if delivery.tag != f"{{{SEAL_NAMESPACE}}}Delivery":
        raise SignatureInvalid("the signed document is not a hub delivery")
    document_element = delivery.find(f"{{{SEAL_NAMESPACE}}}Document")
    if document_element is None:
        raise SignatureInvalid("the sealed delivery carries no Document")
    try:
        document = base64.b64decode(document_element.text or "", validate=True)
    except ValueError as exc:
        raise SignatureInvalid("the sealed Document is not base64") from exc
    if hashlib.sha256(document).hexdigest() != document_element.get("sha256"):
        raise SignatureInvalid("the sealed document does not match its SHA-256")
    return OpenedSeal(
        document=document,
        content_type=document_element.get("contentType", "application/octet-stream"),
        envelope_id=_text(delivery, "EnvelopeId"),
        correlation_id=_text(delivery, "CorrelationId"),
        document_type=_text(delivery, "DocumentType"),
        sealed_by=verified.signer,
        sealed_at=verified.signed_at,
    )


def _child(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{SEAL_NAMESPACE}}}{name}")
    element.text = text
    return element


def _text(delivery: etree._Element, name: str) -> str:
    return delivery.findtext(f"{{{SEAL_NAMESPACE}}}{name}") or ""
