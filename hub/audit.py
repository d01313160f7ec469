"""The audit chain: every state change hash-linked to the one before, so tampering shows.

Writers append rows in the transaction of the change they record, without touching the
chain; a single chainer (the outbox relay, which already runs once per database) then
gives each new row its position and hashes, in the order it finds them committed:
``row_hash = SHA-256(previous_hash | position | row id | message | event | actor |
details | time)``. Editing, deleting or reordering a chained row breaks the hash of that
row or of the next one, and ``hub audit verify`` names the first broken row.

Checkpoints sign the chain's head with the hub's key (XAdES), so even someone who
rewrites the whole chain cannot forge the signed heads.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy.exc
from lxml import etree
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection

from hub.errors import ConfigurationError, SignatureInvalid
from hub.logging import get_logger
from hub.settings import Settings
from hub.signing.keystore import HUB_IDENTITY, Keystore, SigningIdentity
from hub.signing.trust import TrustStore
from hub.signing.xades import sign_document, verify_document
from hub.store.repository import Store, aware, utcnow
from hub.store.tables import AUDIT, CHECKPOINTS

log = get_logger(__name__)

GENESIS_HASH = "0" * 64
CHECKPOINT_NAMESPACE = "urn:hub:audit:checkpoint:1"
# How many pending rows one call links: a document's journey writes about four audit
# rows, so this keeps up with a few relay batches of 500 documents per call.
LINK_BATCH = 2000
# What linking reads of a pending row: what its hash covers.
PENDING_COLUMNS = (
    AUDIT.c.id,
    AUDIT.c.message_id,
    AUDIT.c.event,
    AUDIT.c.actor,
    AUDIT.c.details,
    AUDIT.c.occurred_at,
)
# One statement writes a whole batch of links on PostgreSQL: the positions and hashes go
# as one JSON array (json.dumps is C; psycopg dumps Python lists element by element),
# unpacked into rows server-side. An executemany of one UPDATE per row costs a statement
# (and SQLAlchemy and psycopg a parameter set) per row.
LINK_ROWS_POSTGRESQL = text(
    """
    UPDATE audit_log AS chained
    SET chain_seq = (link ->> 1)::bigint, previous_hash = link ->> 2, row_hash = link ->> 3
    FROM json_array_elements(CAST(:links AS json)) AS link
    WHERE chained.id = (link ->> 0)::bigint AND chained.chain_seq IS NULL
    """
)
# SQLite runs in the process, so one UPDATE per row costs no round trip; executemany
# at the driver skips SQLAlchemy's per-row parameter processing.
LINK_ROW_SQLITE = (
    "UPDATE audit_log SET chain_seq = ?, previous_hash = ?, row_hash = ? "
    "WHERE id = ? AND chain_seq IS NULL"
)


class ChainMoved(RuntimeError):
    """Another chainer linked some of the rows first: this batch's links are rolled back."""


class Link(NamedTuple):
    """A pending row's place in the chain (in the order the PostgreSQL statement reads it)."""

    row_id: int
    seq: int
    previous: str
    current: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``hub audit verify`` found."""

    rows_checked: int
    pending: int
    first_broken_id: int | None = None
    reason: str = ""
    checkpoints_checked: int = 0

    @property
    def intact(self) -> bool:
        """Whether every chained row and checkpoint is as it was written."""
        return self.first_broken_id is None and not self.reason


def row_hash(previous_hash: str, row: Any) -> str:
    """The hash that chains ``row`` after a row whose hash is ``previous_hash``."""
    return link_hash(previous_hash, row.chain_seq, row)


def link_hash(previous_hash: str, position: int, row: Any) -> str:
    """The hash of ``row`` at chain ``position`` (it need not hold the position yet)."""
    occurred_at = aware(row.occurred_at).astimezone(UTC).isoformat()
    material = "|".join(
        [
            previous_hash,
            str(position),
            str(row.id),
            row.message_id or "",
            row.event,
            row.actor,
            row.details,
            occurred_at,
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


class AuditChain:
    """Links, verifies and checkpoints the audit chain of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def link_pending(self, limit: int = LINK_BATCH) -> int:
        """Give unchained rows their positions and hashes; return how many were linked.

        One read of the pending rows and the head, the hashes computed here, and one
        statement writing every link in one transaction. Reading happens without the
        write lock, so the chainer holds up the hub's writers as briefly as it can. Only
        one chainer runs per database (the relay), so the head cannot move in between;
        if another (``hub audit link`` by hand) moved it anyway, nothing is written and
        the next call starts from the new head.
        """
        with self._store.reading() as connection:
            pending = connection.execute(
                select(*PENDING_COLUMNS)
                .where(AUDIT.c.chain_seq.is_(None))
                .order_by(AUDIT.c.id)
                .limit(limit)
            ).all()
            if not pending:
                return 0
            head = connection.execute(
                select(AUDIT.c.chain_seq, AUDIT.c.row_hash)
                .where(AUDIT.c.chain_seq.is_not(None))
                .order_by(AUDIT.c.chain_seq.desc())
                .limit(1)
            ).first()
        links = _links(pending, head)
        try:
            with self._store.transaction() as connection:
                _write_links(connection, links)
        except (ChainMoved, sqlalchemy.exc.IntegrityError):
            # The other chainer gave some of these positions to other rows first.
            log.warning("audit_chain_moved", pending=len(links))
            return 0
        return len(links)

    def verify(self, trust: TrustStore | None = None) -> ChainReport:
        """Walk the chain from its start; name the first row that does not fit."""
        with self._store.reading() as connection:
            checked, broken = _walk(_chained_rows(connection))
            pending = int(
                connection.scalar(
                    select(func.count()).select_from(AUDIT).where(AUDIT.c.chain_seq.is_(None))
                )
                or 0
            )
            if broken is not None:
                return ChainReport(checked, pending, broken[0], broken[1])
            if trust is None:
                return ChainReport(checked, pending)
            return self._verify_checkpoints(connection, trust, checked, pending)

    def checkpoint(self, identity: SigningIdentity) -> int | None:
        """Sign the chain's current head with the hub's key; return its position."""
        with self._store.transaction() as connection:
            head = connection.execute(
                select(AUDIT.c.chain_seq, AUDIT.c.row_hash)
                .where(AUDIT.c.chain_seq.is_not(None))
                .order_by(AUDIT.c.chain_seq.desc())
                .limit(1)
            ).first()
            if head is None:
                return None
            now = utcnow()
            document = sign_document(_checkpoint_xml(head[0], head[1], now), identity)
            connection.execute(
                insert(CHECKPOINTS).values(
                    chain_seq=head[0], row_hash=head[1], signed_document=document, created_at=now
                )
            )
            return int(head[0])

    def _verify_checkpoints(
        self, connection: Connection, trust: TrustStore, checked: int, pending: int
    ) -> ChainReport:
        hashes = dict(connection.execute(select(AUDIT.c.chain_seq, AUDIT.c.row_hash)).all())
        rows = connection.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.id)).all()
        for checkpoint in rows:
            reason = _checkpoint_problem(checkpoint, hashes, trust)
            if reason:
                return ChainReport(checked, pending, None, reason, len(rows))
        return ChainReport(checked, pending, checkpoints_checked=len(rows))


class AuditChainer:
    """Keeps the chain linked and signs its head now and then (run by the single relay)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._chain = AuditChain(store)
        self._settings = settings
        self._next_checkpoint = time.monotonic() + settings.audit_checkpoint_s
        self._identity: SigningIdentity | None = None
        self._warned = False

    def link_pending(self) -> int:
        """Link what writers appended since the last call."""
        return self._chain.link_pending()

    def checkpoint_if_due(self) -> None:
        """Sign the chain's head once ``audit_checkpoint_s`` has passed."""
        if time.monotonic() < self._next_checkpoint:
            return
        self._next_checkpoint = time.monotonic() + self._settings.audit_checkpoint_s
        identity = self._hub_identity()
        if identity is not None:
            position = self._chain.checkpoint(identity)
            log.info("audit_checkpoint_signed", position=position)

    def _hub_identity(self) -> SigningIdentity | None:
        if self._identity is None:
            try:
                keystore = Keystore(self._settings.keys, self._settings.keystore_password)
                self._identity = keystore.identity(HUB_IDENTITY)
            except ConfigurationError as exc:
                if not self._warned:
                    log.warning("audit_checkpoints_unsigned", reason=exc.reason)
                    self._warned = True
        return self._identity


def _links(pending: Sequence[Any], head: Any) -> list[Link]:
    sequence, previous = (head[0], head[1]) if head else (0, GENESIS_HASH)
    links = []
    for row in pending:
        sequence += 1
        current = link_hash(previous, sequence, row)
        links.append(Link(row.id, sequence, previous, current))
        previous = current
    return links


def _write_links(connection: Connection, links: Sequence[Link]) -> None:
    """Write a batch of links in one statement; raise ChainMoved unless every row took its."""
    if connection.dialect.name == "postgresql":
        result = connection.execute(
            LINK_ROWS_POSTGRESQL, {"links": json.dumps([tuple(link) for link in links])}
        )
    else:
        result = connection.exec_driver_sql(
            LINK_ROW_SQLITE,
            [(link.seq, link.previous, link.current, link.row_id) for link in links],
        )
    if result.rowcount != len(links):
        raise ChainMoved(f"{len(links) - result.rowcount} row(s) were linked by someone else")


def _chained_rows(connection: Connection) -> Iterator[Any]:
    yield from connection.execute(
        select(AUDIT).where(AUDIT.c.chain_seq.is_not(None)).order_by(AUDIT.c.chain_seq)
    )


def _walk(rows: Iterator[Any]) -> tuple[int, tuple[int, str] | None]:
    previous, expected_seq, checked = GENESIS_HASH, 1, 0
    for row in rows:
        checked += 1
        if row.chain_seq != expected_seq:
            return checked, (row.id, f"position {expected_seq} is missing (a row was deleted)")
        if row.previous_hash != previous:
            return checked, (row.id, "it does not follow the row before it (reordered or deleted)")
        if row_hash(previous, row) != row.row_hash:
            return checked, (row.id, "its content does not match its hash (edited)")
        previous, expected_seq = row.row_hash, expected_seq + 1
    return checked, None


def _checkpoint_xml(sequence: int, head_hash: str, at: datetime) -> bytes:
    root = etree.Element(
        f"{{{CHECKPOINT_NAMESPACE}}}Checkpoint", nsmap={"cp": CHECKPOINT_NAMESPACE}
    )
    etree.SubElement(root, f"{{{CHECKPOINT_NAMESPACE}}}Position").text = str(sequence)
    etree.SubElement(root, f"{{{CHECKPOINT_NAMESPACE}}}RowHash").text = head_hash
    etree.SubElement(root, f"{{{CHECKPOINT_NAMESPACE}}}At").text = at.isoformat()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _checkpoint_problem(checkpoint: Any, hashes: dict[int, str], trust: TrustStore) -> str:
    try:
        verified = verify_document(checkpoint.signed_document, trust)
    except SignatureInvalid as exc:
        return f"checkpoint {checkpoint.id} is not signed by a trusted key: {exc.reason}"
    position = verified.signed_document.findtext(f"{{{CHECKPOINT_NAMESPACE}}}Position")
    signed_hash = verified.signed_document.findtext(f"{{{CHECKPOINT_NAMESPACE}}}RowHash")
    if hashes.get(int(position or 0)) != signed_hash:
        return (
            f"the chain at position {position} differs from what checkpoint {checkpoint.id} signed"
        )
    return ""
