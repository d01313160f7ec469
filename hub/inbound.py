"""The hub's door for inbound adapters: ``accept`` stores a document before anyone is told."""

from __future__ import annotations

from datetime import datetime

from hub.adapters import Accept
from hub.envelope import Envelope
from hub.logging import get_logger
from hub.store.repository import AcceptOutcome, Store

log = get_logger(__name__)


def accept_into(store: Store) -> Accept:
    """An ``accept`` callable bound to ``store`` for inbound adapters.

    It returns only after the store committed, so an adapter may then confirm receipt
    to the sender (ePUAP ``potwierdzOdebranie``, an HTTP 202, a UPP).
    """

    def accept(
        envelope: Envelope,
        *,
        external_id: str | None = None,
        submitted_at: datetime | None = None,
        rejected_reason: str | None = None,
    ) -> str:
        if rejected_reason is not None:
            outcome = store.reject(
                envelope, rejected_reason, external_id=external_id, submitted_at=submitted_at
            )
        else:
            outcome = store.accept(envelope, external_id=external_id, submitted_at=submitted_at)
        log.info(
            "document_received",
            outcome=outcome.value,
            envelope_id=str(envelope.envelope_id),
            source=envelope.source,
            destination=str(envelope.destination),
            reason=rejected_reason,
        )
        return outcome.value

    return accept


__all__ = ["AcceptOutcome", "accept_into"]
