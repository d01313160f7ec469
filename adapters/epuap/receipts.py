"""Linking ePUAP receipts that arrive on their own to what the hub sent.

A UPD (urzędowe poświadczenie doręczenia) arrives in the sending office's mailbox when
the citizen has collected a document sent with ``dorecz``; the hub pulls it like any
filing. Routed to the ``epuap-receipts`` kind, it is verified (XAdES, against the
pinned ePUAP certificate: no other platform issues receipts) and kept as
evidence of the message whose delivery ePUAP registered under the receipt's
``IdentyfikatorDokumentu``. A receipt for nothing the hub sent is refused
(dead-lettered), so an operator sees it. A receipt whose signature fails is no
evidence: the store quarantines it (channel ``receipts``), it adds no case event, the
awaited UPD stays late, and it is refused (dead-lettered) too.
"""

from __future__ import annotations

from lxml import etree

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import (
    ConfigurationError,
    MalformedDocument,
    PermanentDeliveryError,
    SignatureInvalid,
)
from hub.receipts import Evidence
from hub.region import EndpointConfig
from hub.settings import Settings
from hub.signing.trust import TrustStore, platform_certificate_path
from hub.signing.xades import verify_document
from hub.store.repository import Store
from hub.xml import parse_document

UPO = "http://crd.gov.pl/xml/schematy/UPO/2008/05/09/"
RECEIPT_KINDS = ("UPD", "UPP")


class EpuapReceiptLinker:
    """The ``epuap-receipts`` kind: files a UPD or UPP with the message it certifies."""

    def __init__(self, endpoint: EndpointConfig, settings: Settings) -> None:
        self._endpoint = endpoint
        self._settings = settings
        self._store: Store | None = None
        self._trust: TrustStore | None = None

    def setup(self) -> None:
        """Open the store and read the platforms' trust list once."""
        self._store = Store.from_url(self._settings.database_url)
        # ePUAP's own pinned certificate only: another platform's (e-Doręczenia's, in the
        # same list) issues no UPD.
        configured = str(self._endpoint.options.get("platform_certificate") or "")
        path = platform_certificate_path(self._settings.trust, "epuap", configured)
        if not path.exists():
            raise ConfigurationError(
                f"endpoint {self._endpoint.name}: the platform certificate {path} is missing"
            )
        self._trust = TrustStore.from_pems([path.read_bytes()])

    def stop(self) -> None:
        """Close the store's connections."""
        if self._store is not None:
            self._store.close()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Keep the receipt with the message it certifies.

        Raises:
            PermanentDeliveryError: not a UPP/UPD, no delivery of the hub has its document
                id, or its signature fails (then it is quarantined, not kept).
        """
        assert self._store is not None, "setup() was not called"
        kind, receipt = _receipt_part(envelope.body)
        document_id = receipt.findtext(f"{{{UPO}}}IdentyfikatorDokumentu") or ""
        message_id = self._store.message_id_by_delivery_reference(document_id)
        if message_id is None:
            raise PermanentDeliveryError(
                f"{kind} {receipt.findtext(f'{{{UPO}}}IdentyfikatorPoswiadczenia')} certifies "
                f"ePUAP document {document_id!r}, which the hub did not send"
            )
        evidence = self._evidence(kind, receipt, envelope.body)
        self._store.record_receipt(message_id, evidence)
        if evidence.signature_valid is False:
            raise PermanentDeliveryError(
                f"{kind} {evidence.external_id} for ePUAP document {document_id!r} is "
                f"quarantined, not kept as evidence: {evidence.detail}"
            )
        return DeliveryReceipt(endpoint=self._endpoint.name, external_reference=message_id)

    def _evidence(self, kind: str, receipt: etree._Element, document: bytes) -> Evidence:
        assert self._trust is not None
        identifier = receipt.findtext(f"{{{UPO}}}IdentyfikatorPoswiadczenia")
        try:
            verified = verify_document(document, self._trust)
        except SignatureInvalid as exc:
            return Evidence(kind, document, identifier, False, None, exc.reason)
        return Evidence(kind, document, identifier, True, verified.signer)


def _receipt_part(document: bytes) -> tuple[str, etree._Element]:
    try:
        root = parse_document(document)
    except MalformedDocument as exc:
        raise PermanentDeliveryError(f"not a receipt: {exc.reason}") from exc
    for kind in RECEIPT_KINDS:
        part = root.find(f"{{{UPO}}}{kind}")
        if part is not None:
            return kind, part
    raise PermanentDeliveryError(f"the document {root.tag} holds neither a UPP nor a UPD")
