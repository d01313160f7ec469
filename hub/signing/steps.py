"""Route steps that sign: which documents are signed is routing policy, so signing is a step."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from lxml import etree

from hub.envelope import Envelope
from hub.errors import MalformedDocument
from hub.signing.keystore import HUB_IDENTITY, Keystore
from hub.signing.seal import SEALED_CONTENT_TYPE, seal
from hub.signing.trust import TrustStore
from hub.signing.xades import (
    XADES,
    SignatureFinding,
    sign_document,
    verify_document,
    verify_signatures,
)
from hub.xml import parse_document

Step = Callable[[Envelope], Envelope]


def sign_with_office(keystore: Keystore) -> Step:
    """A step that adds the XAdES-BES signature of the office the envelope is routed for."""

    def sign(envelope: Envelope) -> Envelope:
        identity = keystore.identity(envelope.destination.office)
        signed = sign_document(envelope.body, identity)
        return dataclasses.replace(envelope, body=signed).with_headers(signed_by=identity.subject)

    return sign


def seal_for_delivery(keystore: Keystore) -> Step:
    """A step that wraps the document in a delivery envelope sealed with the hub's key.

    For legacy systems: they verify that the delivery came from the hub unchanged (see
    ``hub.signing.seal``). The hub's identity is loaded (once) at the first document, so
    a keystore without it shows as a logged ``ConfigurationError`` on routing.
    """

    def seal_step(envelope: Envelope) -> Envelope:
        sealed = seal(envelope, keystore.identity(HUB_IDENTITY))
        return dataclasses.replace(envelope, body=sealed, content_type=SEALED_CONTENT_TYPE)

    return seal_step


# The header through which a verification step tells the store what it found: a JSON
# list with one record per signature in the document (see ``signature_records``).
SIGNATURE_CHECKS = "signature-checks"

# Profil Zaufany (the state's free signature) names the signer in ClaimedRoles.
PROFIL_ZAUFANY_MARKERS = ("PodpisZP", "EPSignature")
PERSON_NAMES = ("Imie", "Nazwisko", "GivenName", "FamilyName")


def verify_signature(
    trust: TrustStore, *, required: bool, profil_zaufany: TrustStore | None = None
) -> Step:
    """A step that verifies every signature of the document and records what it found.

    The findings travel in the ``signature-checks`` header, which the routing worker
    stores with the message, one row per signature. With ``required``, a document that
    no valid signature covers as a whole is rejected (``SignatureInvalid``); otherwise
    the findings are only recorded, and the route goes on.

    Args:
        trust: the certificates citizens' signatures are checked against.
        required: whether a document no valid signature covers is rejected.
        profil_zaufany: the Profil Zaufany signing certificates; a valid signature of
            one of them names its citizen signer (None: no signature is recognised so).
    """

    def verify(envelope: Envelope) -> Envelope:
        findings = verify_signatures(envelope.body, trust)
        records = signature_records(findings, profil_zaufany)
        if required and not any(
            record["valid"] and record["covers_document"] for record in records
        ):
            verify_document(envelope.body, trust)  # raises SignatureInvalid with the reason
        if not records:
            records = [_unsigned_record()]
        return envelope.with_headers(**{SIGNATURE_CHECKS: json.dumps(records)})

    return verify


def signature_records(
    findings: list[SignatureFinding], profil_zaufany: TrustStore | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready record per finding, the Profil Zaufany signer recognised.

    Args:
        findings: what the verifier found, one per signature.
        profil_zaufany: the Profil Zaufany signing certificates (see ``verify_signature``).

    Returns:
        The records, in the findings' order.
    """
    return [_record(finding, profil_zaufany) for finding in findings]


def _record(finding: SignatureFinding, profil_zaufany: TrustStore | None) -> dict[str, Any]:
    method, signer = finding.kind, finding.signer
    named = _profil_zaufany_signer(finding, profil_zaufany)
    if named is not None:
        method, signer = named
    return {
        "position": finding.position,
        "form": finding.form,
        "method": method,
        "valid": finding.valid,
        "covers_document": finding.covers_document,
        "signer": signer,
        "signed_at": finding.signed_at.isoformat() if finding.signed_at else None,
        "certificate_serial": (
            str(finding.certificate_serial) if finding.certificate_serial is not None else None
        ),
        "reason": finding.reason,
    }


def _profil_zaufany_signer(
    finding: SignatureFinding, profil_zaufany: TrustStore | None
) -> tuple[str, str] | None:
    """The citizen a valid Profil Zaufany signature names, else None.

    Only a valid signature whose certificate is (or is issued by) a Profil Zaufany
    signing certificate names a citizen, and only through the SignedProperties the
    verifier checked: a ClaimedRole anywhere else (an unsigned ds:Object added to an
    office's signature) is no one's word.
    """
    if not finding.valid or profil_zaufany is None or finding.certificate is None:
        return None
    if finding.signed_properties is None or not profil_zaufany.believes(finding.certificate):
        return None
    return _profil_zaufany(finding.signed_properties)


def _unsigned_record() -> dict[str, Any]:
    return {
        "position": 0,
        "form": "none",
        "method": "none",
        "valid": False,
        "covers_document": False,
        "signer": None,
        "signed_at": None,
        "certificate_serial": None,
        "reason": "the document carries no ds:Signature",
    }


def _profil_zaufany(signed_properties: etree._Element) -> tuple[str, str] | None:
    """The signer the claimed roles of verified SignedProperties name, if Profil Zaufany.

    The role carries the ``PodpisZP`` (or ``EPSignature``) structure either as child
    elements or as XML written into the role's text; both are read.
    """
    roles = signed_properties.iterfind(
        f"{{{XADES}}}SignedSignatureProperties/{{{XADES}}}SignerRole"
        f"/{{{XADES}}}ClaimedRoles/{{{XADES}}}ClaimedRole"
    )
    for role in roles:
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
