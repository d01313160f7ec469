"""The hub's door for inbound adapters: ``accept`` stores a document before anyone is told."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime

from hub.adapters import Accept
from hub.envelope import Envelope
from hub.errors import InboundUnavailable
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
        case_owner: str | None = None,
    ) -> str:
        if rejected_reason is not None:
            outcome = store.reject(
                envelope, rejected_reason, external_id=external_id, submitted_at=submitted_at
            )
        else:
            outcome = store.accept(
                envelope,
                external_id=external_id,
                submitted_at=submitted_at,
                case_owner=case_owner,
            )
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


def drain_in_parallel(pool: Executor, drains: Mapping[str, Callable[[], int]]) -> int:
    """Run one drain per mailbox on ``pool``; a failing mailbox does not stop the others.

    Returns:
        How many documents all the drains took.

    Raises:
        InboundUnavailable: naming how many mailboxes failed and the first one's reason.
    """
    futures = {mailbox: pool.submit(drain) for mailbox, drain in drains.items()}
    taken = 0
    failures: list[str] = []
    for mailbox, future in futures.items():
        try:
            taken += future.result()
        except InboundUnavailable as exc:
            failures.append(f"{mailbox}: {exc.reason}")
    if failures:
        raise InboundUnavailable(f"{len(failures)} mailbox(es) failed; first: {failures[0]}")
    return taken


__all__ = ["AcceptOutcome", "accept_into", "drain_in_parallel"]
