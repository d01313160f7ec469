"""Quarantine: inbound requests the hub refused before they could become messages.

Every inbound endpoint answers bad input with a specific error; this is where the
refused input itself is kept, so nothing that reached the hub vanishes: the regional
IT centre sees what arrived, when, from where and why (``hub quarantine list``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from hub.store.pages import Cursor, bounded, keyset_after
from hub.store.repository import Store, aware, utcnow
from hub.store.tables import QUARANTINE

# Enough to see what a caller sent; the digest covers the whole body.
KEPT_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RefusedInput:
    """One refused request: on which channel, the error code answered, and why."""

    channel: str
    code: str
    reason: str
    body: bytes = b""
    content_type: str | None = None
    remote_address: str | None = None


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
    """Keep ``refused`` with its reason; return its quarantine id."""
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
                    size=len(refused.body),
                    sha256=hashlib.sha256(refused.body).hexdigest(),
                    body=refused.body[:KEPT_BODY_BYTES],
                    truncated=len(refused.body) > KEPT_BODY_BYTES,
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
