"""Receipts: the evidence the other side issues for what the hub delivered or received.

UPP (ePUAP's proof of submission), UPD (proof of delivery), e-Doręczenia evidences and
legacy acknowledgements are kept as documents, with whether their signature verified.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Evidence:
    """A receipt document the other side issued (UPP, UPD, e-Doręczenia evidence, ...)."""

    kind: str
    document: bytes
    external_id: str | None = None
    signature_valid: bool | None = None
    signer: str | None = None
    detail: str | None = None
