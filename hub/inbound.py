"""The hub's door for inbound adapters: ``accept`` stores a document before anyone is told."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime

import structlog

from hub.adapters import Accept
from hub.envelope import Envelope
from hub.errors import HubError, InboundUnavailable, StoreUnavailable
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


class MailboxesFailed(InboundUnavailable):
    """Some mailboxes of a channel could not be drained; the others' documents were taken.

    Attributes:
        taken: how many documents the mailboxes that did not fail took.
        failed: each failed mailbox with its error's reason.
    """

    def __init__(self, taken: int, failed: Mapping[str, str]) -> None:
        first_mailbox, first_reason = next(iter(failed.items()))
        super().__init__(
            f"{len(failed)} mailbox(es) failed; first: {first_mailbox}: {first_reason}"
        )
        self.taken = taken
        self.failed = dict(failed)


def drain_in_parallel(pool: Executor, drains: Mapping[str, Callable[[], int]]) -> int:
    """Run one drain per mailbox on ``pool``; a failing mailbox does not stop the others.

    Each drain runs whole on one thread of the pool, so a mailbox's own order (take,
    store, confirm) is kept; the pool bounds how many mailboxes are drained at once.
    Every failure is logged with its mailbox (``mailbox_poll_failed``) when it is
    collected. The store going away, or an error that is no ``HubError`` (a bug), is
    re-raised, but only after every other mailbox has finished.

    Returns:
        How many documents all the drains took.

    Raises:
        MailboxesFailed: naming how many mailboxes failed (and the first one's reason),
            carrying how many documents the others took.
    """
    futures = {
        mailbox: pool.submit(_drain_one, mailbox, drain) for mailbox, drain in drains.items()
    }
    taken = 0
    failed: dict[str, str] = {}
    crash: BaseException | None = None
    for mailbox, future in futures.items():
        try:
            taken += future.result()
        except StoreUnavailable as exc:
            # Not this mailbox's fault: the database is gone for every mailbox, and the
            # caller waits for it as for any store outage (nothing was confirmed).
            log.warning("mailbox_poll_failed", mailbox=mailbox, code=exc.code, reason=exc.reason)
            crash = crash or exc
        except HubError as exc:
            log.warning("mailbox_poll_failed", mailbox=mailbox, code=exc.code, reason=exc.reason)
            failed[mailbox] = exc.reason
        except Exception as exc:  # re-raised below, once the others are done
            log.exception("mailbox_poll_crashed", mailbox=mailbox)
            crash = crash or exc
    if crash is not None:
        raise crash
    if failed:
        raise MailboxesFailed(taken, failed)
    return taken


def _drain_one(mailbox: str, drain: Callable[[], int]) -> int:
    # Pool threads do not inherit the caller's context: bind the mailbox here, so every
    # line the drain logs names it.
    with structlog.contextvars.bound_contextvars(mailbox=mailbox):
        return drain()


__all__ = ["AcceptOutcome", "MailboxesFailed", "accept_into", "drain_in_parallel"]
