"""XAdES-BES and XML-DSig signatures (ETSI EN 319 132-1) with signxml: sign and verify documents.

Signatures the hub makes use RSA-SHA256 with SHA-256 digests and signxml's default
canonicalization (C14N 1.1): signxml 5.2's XAdES signer makes invalid signatures with
exclusive canonicalization.

Verification reports every signature a document carries, each with its own result. A
document counts as signed only when a valid signature covers the whole document:
enveloped (a reference to ``""`` from a signature that is a child of the root) or
enveloping (the signature is the root and its first reference is the ``ds:Object``
holding the document). Callers use only what the verifier returns as signed, never what
they find by searching the document again: that is what defeats signature wrapping.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier
from signxml.xades.xades import (
    XAdESSignatureConfiguration,
    XAdESSigner,
    XAdESVerifier,
    XAdESVerifyResult,
)

from hub.errors import SignatureInvalid
from hub.signing.keystore import SigningIdentity
from hub.signing.trust import TrustStore
from hub.xml import parse_document

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
SIGNATURE_TAG = f"{{{DS}}}Signature"
OBJECT_TAG = f"{{{DS}}}Object"


@dataclass(frozen=True, slots=True)
class SignatureFinding:
    """What checking one signature found: valid or why not, who signed, what it covers.

    ``signed_document`` is set only for a valid signature over the whole document: it is
    the document as the verifier rebuilt it from what was signed. ``signed_properties``
    is the XAdES SignedProperties element exactly as the verifier checked it (its digest
    reference verified), or None: whatever a record says of the signer beyond the
    certificate (a signing time, a claimed role) is read from it, never from the tree.
    """

    position: int
    form: str
    kind: str
    valid: bool
    covers_document: bool
    signer: str | None = None
    certificate_serial: int | None = None
    signed_at: datetime.datetime | None = None
    reason: str | None = None
    signed_document: etree._Element | None = None
    signature: etree._Element | None = None
    signed_properties: etree._Element | None = None
    certificate: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """What a valid signature over the whole document proves: who signed, when, and what."""

    signer: str
    certificate_serial: int
    signed_at: datetime.datetime | None
    signed_document: etree._Element
    signature: etree._Element | None = None
    form: str = "enveloped"
    findings: tuple[SignatureFinding, ...] = ()


def sign_document(document: bytes, identity: SigningIdentity) -> bytes:
    """Return ``document`` with an enveloped XAdES-BES signature of ``identity`` added."""
    return _sign(parse_document(document), identity, SignatureConstructionMethod.enveloped)


def sign_enveloping(document: bytes, identity: SigningIdentity) -> bytes:
    """Return a XAdES-BES signature of ``identity`` that holds ``document`` in a ds:Object."""
    return _sign(parse_document(document), identity, SignatureConstructionMethod.enveloping)


def _sign(
    root: etree._Element, identity: SigningIdentity, method: SignatureConstructionMethod
) -> bytes:
    signer = XAdESSigner(
        method=method,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
    )
    signed = signer.sign(root, key=identity.private_key, cert=[identity.certificate])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def verify_document(document: bytes, trust: TrustStore) -> VerifiedSignature:
    """The first valid signature over the whole of ``document``, with every finding.

    Raises:
        SignatureInvalid: unsigned, or no signature over the whole document verifies
            (untrusted or expired certificate, content changed, fragment only); the
            reason is that of the first signature that claims the whole document.
    """
    findings = verify_signatures(document, trust)
    for finding in findings:
        if finding.valid and finding.covers_document and finding.signed_document is not None:
            assert finding.signer is not None
            assert finding.certificate_serial is not None
            return VerifiedSignature(
                signer=finding.signer,
                certificate_serial=finding.certificate_serial,
                signed_at=finding.signed_at,
                signed_document=finding.signed_document,
                signature=finding.signature,
                form=finding.form,
                findings=tuple(findings),
            )
    raise SignatureInvalid(_why_unsigned(findings))


def verify_signatures(document: bytes, trust: TrustStore) -> list[SignatureFinding]:
    """Check every ds:Signature in ``document``, in document order; raise nothing for them.

    Raises:
        MalformedDocument: the document itself is unsafe or not XML.
    """
    root = parse_document(document)
    # An enveloping signature is the whole document; what its ds:Object holds is the
    # signed content, and signatures inside it belong to that content, not to this check.
    signatures = [root] if root.tag == SIGNATURE_TAG else list(root.iter(SIGNATURE_TAG))
    return [
        _check(root, signature, position, trust)
        for position, signature in enumerate(signatures, start=1)
    ]


def _why_unsigned(findings: list[SignatureFinding]) -> str:
    if not findings:
        return "the document carries no ds:Signature"
    claiming = [finding for finding in findings if finding.covers_document]
    if not claiming:
        return (
            f"the signature does not cover the whole document ({len(findings)} found, "
            "none enveloped over the root or enveloping it)"
        )
    reason = claiming[0].reason or "the signature is not valid"
    if len(findings) == 1:
        return reason
    return f"none of {len(findings)} signatures is valid over the whole document: {reason}"


def _check(
    root: etree._Element, signature: etree._Element, position: int, trust: TrustStore
) -> SignatureFinding:
    form = _form(root, signature)
    is_xades = signature.find(f".//{{{XADES}}}QualifyingProperties") is not None
    kind = "xades" if is_xades else "xmldsig"
    base: dict[str, Any] = {"position": position, "form": form, "kind": kind}
    base["signature"] = signature
    covers = _claims_whole_document(root, signature, form)
    try:
        certificate = _signer_certificate(signature)
        base |= {
            "signer": certificate.subject.rfc4514_string(),
            "certificate_serial": certificate.serial_number,
            "certificate": certificate,
        }
        signed_content, signed_properties = _verify_cryptographically(
            root, position, certificate, kind
        )
        # The signing time judged and recorded is the one the verifier checked as signed;
        # a SigningTime elsewhere in the tree (an unsigned ds:Object) says nothing.
        signed_at = _signing_time(signed_properties) if signed_properties is not None else None
        base |= {"signed_at": signed_at, "signed_properties": signed_properties}
        trust.check(certificate, signed_at or datetime.datetime.now(datetime.UTC))
    except SignatureInvalid as exc:
        return SignatureFinding(valid=False, covers_document=covers, reason=exc.reason, **base)
    document = _whole_document(root, signed_content, form) if covers else None
    if covers and document is None:
        reason = "the signature's first reference is not the whole document"
        return SignatureFinding(valid=False, covers_document=True, reason=reason, **base)
    return SignatureFinding(valid=True, covers_document=covers, signed_document=document, **base)


def _form(root: etree._Element, signature: etree._Element) -> str:
    if signature is root:
        return "enveloping"
    return "enveloped" if signature.getparent() is root else "nested"


def _reference_uris(signature: etree._Element) -> list[str | None]:
    return [
        reference.get("URI")
        for reference in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    ]


def _claims_whole_document(root: etree._Element, signature: etree._Element, form: str) -> bool:
    """Whether the signature's first reference names the whole document.

    Enveloped: ``""`` from a child of the root. Enveloping: ``#id`` of one of its own
    ds:Object children. Anything else signs a fragment, which says nothing of the rest.
    """
    uris = _reference_uris(signature)
    if not uris:
        return False
    if form == "enveloped":
        return uris[0] == ""
    if form == "enveloping" and (uris[0] or "").startswith("#"):
        wanted = (uris[0] or "")[1:]
        return any(item.get("Id") == wanted for item in root.iterchildren(OBJECT_TAG))
    return False


def _verify_cryptographically(
    root: etree._Element, position: int, certificate: x509.Certificate, kind: str
) -> tuple[etree._Element | None, etree._Element | None]:
    """Check digests and the signature value; return what the verifier returned as signed.

    Returns:
        The first reference's signed content, and the XAdES SignedProperties the
        verifier checked (None for a plain XML-DSig signature). A signature that carries
        XAdES properties is verified as XAdES, so its SignedProperties must be signed.

    The certificate's trust is judged by the caller at the signing time the verified
    properties declare: a signature stays valid after its certificate expires.
    """
    verifier = _NthXAdESVerifier(position) if kind == "xades" else _NthXMLVerifier(position)
    config_type = XAdESSignatureConfiguration if kind == "xades" else SignatureConfiguration
    # signxml refuses a pinned certificate not valid at its verification time; the time
    # that matters (the signed SigningTime) is known only after verifying, so signxml is
    # given a moment inside the validity and the caller's trust check judges the real one.
    config = config_type(expect_references=True, verification_time=certificate.not_valid_before_utc)
    try:
        results: Any = verifier.verify(root, x509_cert=certificate, expect_config=config)
    except (SignXMLException, etree.LxmlError, ValueError) as exc:
        raise SignatureInvalid(f"the signature does not verify: {exc}") from exc
    results = results if isinstance(results, list) else [results]
    signed: etree._Element | None = results[0].signed_xml
    return signed, _verified_signed_properties(results)


def _verified_signed_properties(results: list[Any]) -> etree._Element | None:
    """The SignedProperties among the verified references (signxml's XAdESVerifyResult)."""
    for result in results:
        if isinstance(result, XAdESVerifyResult) and result.signed_xml is not None:
            properties: etree._Element = result.signed_xml
            return properties
    return None


class _NthSignature:
    """Aims a signxml verifier at the ``position``-th signature of the document.

    signxml verifies the first ds:Signature it finds; a document with several signatures
    needs each checked, so the lookup is narrowed to one by its place in document order
    (signxml looks it up again in its own copy of the document, hence no element).
    """

    def __init__(self, position: int) -> None:
        super().__init__()
        self.position = position

    def _get_signature(self, root: etree._Element) -> etree._Element:
        if root.tag == SIGNATURE_TAG:
            return root
        return list(root.iter(SIGNATURE_TAG))[self.position - 1]


class _NthXMLVerifier(_NthSignature, XMLVerifier):
    pass


class _NthXAdESVerifier(_NthSignature, XAdESVerifier):
    pass


def _whole_document(
    root: etree._Element, signed: etree._Element | None, form: str
) -> etree._Element | None:
    """The signed document, rebuilt from what the verifier returned as signed."""
    if signed is None:
        return None
    if form == "enveloped":
        return signed if signed.tag == root.tag else None
    if signed.tag != OBJECT_TAG:
        return None
    content = [child for child in signed if isinstance(child.tag, str)]
    return content[0] if len(content) == 1 else None


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


def _signing_time(signed_properties: etree._Element) -> datetime.datetime | None:
    text = signed_properties.findtext(
        f"{{{XADES}}}SignedSignatureProperties/{{{XADES}}}SigningTime"
    )
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureInvalid(f"the XAdES SigningTime {text!r} is unreadable") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
