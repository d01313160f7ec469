"""Quarantine: inbound requests the hub refused before they could become messages.

Every inbound endpoint answers bad input with a specific error; this is where the
refused input itself is kept, so nothing that reached the hub vanishes: the regional
IT centre sees what arrived, when, from where and why (``hub quarantine list``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy import delete, insert, select

from hub.store.pages import Cursor, bounded, keyset_after
from hub.store.repository import Store, audit_event, aware, utcnow
from hub.store.tables import QUARANTINE

# Enough to see what a known caller sent; the digest covers the whole body.
KEPT_BODY_BYTES = 1024 * 1024
# A caller with no valid credential is nobody the hub knows: of what it sent only the
# start is kept (with the whole body's digest and size, and its address), so strangers
# cannot fill the store by being refused.
UNAUTHENTICATED_KEPT_BODY_BYTES = 4 * 1024
PRUNE_BATCH_SIZE = 1000
READ_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RefusedInput:
    """One refused request: on which channel, the error code answered, and why."""

    channel: str
    code: str
    reason: str
    body: bytes = b""
    content_type: str | None = None
    remote_address: str | None = None
    # False for a caller that offered no valid credential (a 401-type refusal).
    authenticated: bool = True
    # The whole body's size and digest, when ``body`` holds only its start (a sample).
    size: int | None = None
    sha256: str | None = None

    @property
    def kept_bytes(self) -> int:
        """How much of the body is kept: a glimpse for strangers, more for known callers."""
        return KEPT_BODY_BYTES if self.authenticated else UNAUTHENTICATED_KEPT_BODY_BYTES


@dataclass(frozen=True, slots=True)
class BodySample:
    """The start of a body read once, with the whole body's size and SHA-256."""

    start: bytes
    size: int
    sha256: str


def sample_stream(stream: IO[bytes], kept_bytes: int) -> BodySample:
    """Read ``stream`` to its end in chunks, keeping only its first ``kept_bytes``.

    Args:
        stream: the body (a request's input stream, already bounded by its route's limit).
        kept_bytes: how much of the start to keep.

    Returns:
        The start, and the whole body's size and digest; memory stays one chunk.
    """
    digest = hashlib.sha256()
    start = bytearray()
    size = 0
    while chunk := stream.read(READ_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
        if len(start) < kept_bytes:
            start += chunk[: kept_bytes - len(start)]
    return BodySample(start=bytes(start), size=size, sha256=digest.hexdigest())


@dataclass(frozen=True, slots=True)
class QuarantinedInput:
    """A refused request as kept."""

    id: int
    channel: str
    code: str
    reason: str
    size: int
    sha256: str
    truncated: bool
    received_at: datetime
    remote_address: str | None
    content_type: str | None


def quarantine(store: Store, refused: RefusedInput) -> int:
    """Keep ``refused`` with its reason; return its quarantine id.

    Args:
        store: where refused input is kept.
        refused: the request; of its body at most ``refused.kept_bytes`` are kept.

    Returns:
        The quarantine id.

    Raises:
        StoreUnavailable: the store cannot be written.
    """
    kept = refused.body[: refused.kept_bytes]
    size = len(refused.body) if refused.size is None else refused.size
    sha256 = refused.sha256 or hashlib.sha256(refused.body).hexdigest()
    with store.transaction() as connection:
        return int(
            connection.execute(
                insert(QUARANTINE)
                .values(
                    channel=refused.channel[:60],
                    code=refused.code[:60],
                    reason=refused.reason,
                    remote_address=refused.remote_address,
                    content_type=(refused.content_type or "")[:200] or None,
                    size=size,
                    sha256=sha256,
                    body=kept,
                    truncated=size > len(kept),
                    received_at=utcnow(),
                )
                .returning(QUARANTINE.c.id)
            ).scalar_one()
        )


def quarantined(
    store: Store,
    channel: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    *,
    after: Cursor | None = None,
) -> list[QuarantinedInput]:
    """The newest refused inputs, optionally of one channel and since a moment.

    Args:
        store: the store to read.
        channel: only this channel's.
        since: only those refused since then.
        limit: at most this many (held to :data:`hub.store.pages.MAX_PAGE`).
        after: the page after this row (a keyset cursor: when it arrived, its id).
    """
    query = select(
        QUARANTINE.c.id,
        QUARANTINE.c.channel,
        QUARANTINE.c.code,
        QUARANTINE.c.reason,
        QUARANTINE.c.size,
        QUARANTINE.c.sha256,
        QUARANTINE.c.truncated,
        QUARANTINE.c.received_at,
        QUARANTINE.c.remote_address,
        QUARANTINE.c.content_type,
    )
    if channel is not None:
        query = query.where(QUARANTINE.c.channel == channel)
    if since is not None:
        query = query.where(QUARANTINE.c.received_at >= since)
    following = keyset_after(QUARANTINE.c.received_at, QUARANTINE.c.id, after, newest_first=True)
    if following is not None:
        query = query.where(following)
    query = query.order_by(QUARANTINE.c.received_at.desc(), QUARANTINE.c.id.desc())
    with store.reading() as connection:
        rows = connection.execute(query.limit(bounded(limit))).all()
    return [
        QuarantinedInput(
            id=row[0],
            channel=row[1],
            code=row[2],
            reason=row[3],
            size=row[4],
            sha256=row[5],
            truncated=bool(row[6]),
            received_at=aware(row[7]),
            remote_address=row[8],
            content_type=row[9],
        )
        for row in rows
    ]


def quarantine_cursor(item: QuarantinedInput) -> Cursor:
    """The cursor of the page after ``item``."""
    return Cursor(item.received_at, str(item.id))


def prune_quarantine(
    store: Store,
    received_before: datetime,
    batch_size: int = PRUNE_BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Remove the refused inputs received before ``received_before``, a batch at a time.

    Each batch is deleted and audited (``quarantine_pruned``) in one transaction, so
    the audit log tells what went, and no transaction holds the table for long.

    Args:
        store: the store holding the quarantine.
        received_before: inputs received before this moment go.
        batch_size: how many rows one transaction removes.
        on_batch: told each batch's count as it is removed (``hub quarantine prune``
            prints it).

    Returns:
        How many inputs were removed in all.

    Raises:
        StoreUnavailable: the store cannot be written; batches already removed stay so.
    """
    removed = 0
    while batch := _prune_batch(store, received_before, batch_size):
        removed += batch
        if on_batch is not None:
            on_batch(batch)
        if batch < batch_size:
            break
    return removed


def _prune_batch(store: Store, received_before: datetime, batch_size: int) -> int:
    oldest = (
        select(QUARANTINE.c.id)
        .where(QUARANTINE.c.received_at < received_before)
        .order_by(QUARANTINE.c.id)
        .limit(batch_size)
    )
    with store.transaction() as connection:
        ids = list(connection.execute(oldest).scalars())
        if not ids:
            return 0
        # The ids of one batch, bounded by batch_size: never a list of the whole table.
        connection.execute(delete(QUARANTINE).where(QUARANTINE.c.id.in_(ids)))
        audit_event(
            connection,
            None,
            "quarantine_pruned",
            utcnow(),
            count=len(ids),
            first_id=ids[0],
            last_id=ids[-1],
            received_before=received_before.isoformat(),
        )
    return len(ids)
