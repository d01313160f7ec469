"""Linking ePUAP receipts that arrive on their own to what the hub sent.

A UPD (urzędowe poświadczenie doręczenia) arrives in the sending office's mailbox when
the citizen has collected a document sent with ``dorecz``; the hub pulls it like any
filing. Routed to the ``epuap-receipts`` kind, it is verified (XAdES, trust store)
and kept as evidence of the message whose delivery ePUAP registered under the
receipt's ``IdentyfikatorDokumentu``. A receipt for nothing the hub sent is refused
(dead-lettered), so an operator sees it.
"""

from __future__ import annotations

from lxml import etree

from hub.adapters import DeliveryReceipt
from hub.envelope import Envelope
from hub.errors import MalformedDocument, PermanentDeliveryError, SignatureInvalid
from hub.receipts import Evidence
from hub.region import EndpointConfig
from hub.settings import Settings
from hub.signing.trust import TrustStore
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
        """Open the store and read the trust store once."""
        self._store = Store.from_url(self._settings.database_url)
        self._trust = TrustStore.from_directory(self._settings.trust)

    def stop(self) -> None:
        """Close the store's connections."""
        if self._store is not None:
            self._store.close()

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Keep the receipt with the message it certifies.

        Raises:
            PermanentDeliveryError: not a UPP/UPD, or no delivery of the hub has its document id.
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
        self._store.record_receipt(message_id, self._evidence(kind, receipt, envelope.body))
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
