"""The simulated provider's seal on its evidences: XAdES-BES, enveloped, made with signxml.

The real e-Doręczenia evidences are ETSI REM evidences the provider signs; the simulator
signs each evidence document it issues with its own platform identity (``edoreczenia``
of the keystore ``hub keys init`` writes to ``var/platforms``), RSA-SHA256 with SHA-256
digests and signxml's default canonicalization (C14N 1.1; signxml 5.2's XAdES signer
makes invalid signatures with exclusive canonicalization). The signature is made here
with signxml directly, not with the hub's signing code, so the hub's verifier is held
against a signer it does not share code with; the simulator verifies nothing.

Without a configured identity the simulator makes a throwaway test CA and identity on
first use, so evidences are always signed, as the provider's are; whoever wants to
check them reads the certificate from ``GET /_sim/identity``.
"""

from __future__ import annotations

import datetime

from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.xades.xades import XAdESSigner

from hub.signing.keystore import SigningIdentity
from simulators.identity import PlatformIdentity

#: Name of the identity a keystore holds for the simulated provider.
PLATFORM_IDENTITY = "edoreczenia"
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class EvidenceSigner(PlatformIdentity):
    """The simulated provider's signing identity, and the evidences it signs."""

    def __init__(
        self, identity: SigningIdentity | None = None, ca_certificate_pem: bytes | None = None
    ) -> None:
        """Sign as ``identity`` (None: a throwaway one made when first needed)."""
        super().__init__(PLATFORM_IDENTITY, identity, ca_certificate_pem)

    def sign(self, document: bytes) -> bytes:
        """Return ``document`` with the provider's enveloped XAdES-BES signature."""
        identity = self.identity()
        signer = XAdESSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
        )
        root = etree.fromstring(document, _SAFE_PARSER)
        signed = signer.sign(root, key=identity.private_key, cert=[identity.certificate])
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def tampered(document: bytes, event_element: str) -> bytes:
    """Return a signed evidence whose event time was moved a day back after signing.

    What a forger would want (an earlier delivery), and what the signature's digest
    no longer matches: the signature itself is left exactly as it was.

    Args:
        document: a signed evidence document.
        event_element: the Clark name of the element holding the event time.

    Raises:
        ValueError: the document has no such element.
    """
    root = etree.fromstring(document, _SAFE_PARSER)
    element = root.find(f".//{event_element}")
    if element is None or not element.text:
        raise ValueError(f"the evidence has no {event_element} to tamper with")
    moment = datetime.datetime.fromisoformat(element.text.replace("Z", "+00:00"))
    earlier = moment - datetime.timedelta(days=1)
    element.text = earlier.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
