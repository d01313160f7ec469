"""e-Doręczenia evidences as the hub keeps them: evidence only if the provider's signature holds.

Each evidence document (dowód: A.1, D.1, E.1, ...) the hub downloads is checked against
the pinned certificate of the provider (``trust/platforms/edoreczenia.pem``, or the
option ``platform_certificate``), as ePUAP's UPP and UPD are against ePUAP's: an
enveloped XAdES signature over the whole document, made with exactly that certificate.
The receipt records the outcome (``signature_valid`` True or False, the reason in
``detail``); the store quarantines one that failed (channel ``receipts``), so a forged
or unsigned evidence adds no receipt and no case event and leaves an awaited one late.
The outbound adapter (evidences read after sending) and the webhook (evidences the
service announces) both make their receipts here, so they file an evidence alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.edoreczenia.contract import Evidence as PlatformEvidence
from hub.errors import ConfigurationError, MalformedDocument, SignatureInvalid
from hub.logging import get_logger
from hub.receipts import Evidence
from hub.signing.trust import TrustStore, platform_certificate_path
from hub.signing.xades import verify_document

log = get_logger(__name__)

PLATFORM = "edoreczenia"
#: The option naming the provider's certificate file, instead of the platforms' list.
CERTIFICATE_OPTION = "platform_certificate"
#: The receipt kind prefix: ``e-Doręczenia E.1``.
KIND_PREFIX = "e-Doręczenia"


def pinned_provider_trust(trust_root: Path, options: Mapping[str, Any], owner: str) -> TrustStore:
    """A trust list of exactly the provider's pinned certificate.

    Args:
        trust_root: the hub's trust store folder (``trust_store_dir``).
        options: the endpoint's or channel's options (``platform_certificate`` may name
            the file).
        owner: the endpoint or channel, for the error.

    Returns:
        A trust store of that one certificate: only the provider itself issues
        evidences, not whoever else its CA certified.

    Raises:
        ConfigurationError: the certificate file is missing or holds no certificate.
    """
    path = platform_certificate_path(trust_root, PLATFORM, str(options.get(CERTIFICATE_OPTION, "")))
    if not path.exists():
        raise ConfigurationError(
            f"{owner}: the e-Doręczenia provider's certificate {path} is missing; "
            "run: hub keys init (tests, demo) or install the provider's certificate"
        )
    try:
        return TrustStore.from_pems([path.read_bytes()])
    except ValueError as exc:
        raise ConfigurationError(f"{owner}: {path} holds no readable certificate: {exc}") from exc


def verified_receipt(evidence: PlatformEvidence, trust: TrustStore) -> Evidence:
    """The hub's receipt for an evidence, with whether the provider's signature verified.

    The kind and id are those both the outbound adapter and the webhook use, so an
    evidence met by both is kept once.
    """
    issued = f"recipient {evidence.recipient}, issued {evidence.issued_at}"
    try:
        verified = verify_document(evidence.document, trust)
    except (SignatureInvalid, MalformedDocument) as exc:
        log.warning(
            "edoreczenia_evidence_not_verified",
            evidence_id=evidence.evidence_id,
            kind=evidence.kind,
            reason=exc.reason,
        )
        return Evidence(
            kind=f"{KIND_PREFIX} {evidence.kind}",
            document=evidence.document,
            external_id=evidence.evidence_id,
            signature_valid=False,
            detail=f"{issued}; not the provider's evidence: {exc.reason}",
        )
    return Evidence(
        kind=f"{KIND_PREFIX} {evidence.kind}",
        document=evidence.document,
        external_id=evidence.evidence_id,
        signature_valid=True,
        signer=verified.signer,
        detail=issued,
    )
