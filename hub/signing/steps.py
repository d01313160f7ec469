"""Route steps that sign: which documents are signed is routing policy, so signing is a step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lxml import etree

from hub.envelope import Envelope
from hub.errors import MalformedDocument, SignatureInvalid
from hub.signing.keystore import Keystore
from hub.signing.trust import TrustStore
from hub.signing.xades import XADES, VerifiedSignature, sign_document, verify_document
from hub.xml import parse_document

Step = Callable[[Envelope], Envelope]


def sign_with_office(keystore: Keystore) -> Step:
    """A step that adds the XAdES-BES signature of the office the envelope is routed for."""

    def sign(envelope: Envelope) -> Envelope:
        identity = keystore.identity(envelope.destination.office)
        signed = sign_document(envelope.body, identity)
        return dataclasses.replace(envelope, body=signed).with_headers(signed_by=identity.subject)

    return sign


# Headers through which a verification step tells the store what it found.
SIGNATURE_VALID = "signature-valid"
SIGNATURE_METHOD = "signature-method"
SIGNATURE_SIGNER = "signature-signer"
SIGNATURE_SIGNED_AT = "signature-signed-at"
SIGNATURE_SERIAL = "signature-certificate-serial"
SIGNATURE_REASON = "signature-reason"

# Profil Zaufany (the state's free signature) names the signer in ClaimedRoles.
PROFIL_ZAUFANY_MARKERS = ("PodpisZP", "EPSignature")
PERSON_NAMES = ("Imie", "Nazwisko", "GivenName", "FamilyName")


def verify_signature(trust: TrustStore, *, required: bool) -> Step:
    """A step that verifies the document's XAdES signature and records what it found.

    The result travels in ``signature-*`` headers, which the routing worker stores with
    the message. With ``required``, a document without a valid signature is rejected
    (``SignatureInvalid``); otherwise the result is only recorded, and the route goes on.
    """

    def verify(envelope: Envelope) -> Envelope:
        try:
            verified = verify_document(envelope.body, trust)
        except SignatureInvalid as exc:
            if required:
                raise
            return envelope.with_headers(**{SIGNATURE_VALID: "false", SIGNATURE_REASON: exc.reason})
        return envelope.with_headers(**_found(verified))

    return verify


def _found(verified: VerifiedSignature) -> dict[str, str]:
    method, signer = _profil_zaufany(verified.signature) or ("xades", verified.signer)
    return {
        SIGNATURE_VALID: "true",
        SIGNATURE_METHOD: method,
        SIGNATURE_SIGNER: signer,
        SIGNATURE_SIGNED_AT: verified.signed_at.isoformat() if verified.signed_at else "",
        SIGNATURE_SERIAL: str(verified.certificate_serial),
    }


def _profil_zaufany(signature: etree._Element | None) -> tuple[str, str] | None:
    """The signer a Profil Zaufany signature names in its claimed roles, if it is one.

    The role carries the ``PodpisZP`` (or ``EPSignature``) structure either as child
    elements or as XML written into the role's text; both are read.
    """
    if signature is None:
        return None
    for role in signature.iter(f"{{{XADES}}}ClaimedRole"):
        for candidate in (role, _embedded(role.text)):
            found = _signer_named_in(candidate)
            if found is not None:
                return "profil-zaufany", found
    return None


def _embedded(text: str | None) -> etree._Element | None:
    if not text or not any(marker in text for marker in PROFIL_ZAUFANY_MARKERS):
        return None
    try:
        return parse_document(text.strip().encode())
    except MalformedDocument:
        return None


def _signer_named_in(role: etree._Element | None) -> str | None:
    if role is None:
        return None
    for marker in role.iter():
        if isinstance(marker.tag, str) and etree.QName(marker).localname in PROFIL_ZAUFANY_MARKERS:
            names = [
                (element.text or "").strip()
                for element in marker.iter()
                if isinstance(element.tag, str) and etree.QName(element).localname in PERSON_NAMES
            ]
            return " ".join(name for name in names if name) or "Profil Zaufany"
    return None
