"""Who is calling: one registry of clients for every inbound API of the hub.

A client is one calling system: an office's EOD, its tax system, the regional portal,
e-Doręczenia's notification service, a monitoring robot of the regional IT centre. It
has a name, whom it acts for (one office of the catalogue, ``portal`` or ``region``),
the sources it may speak as (``eod``, ``podatki``, ``alkohol``, ...), the APIs it may call
(``intake``, ``cases``, ``edoreczenia-webhook``, ``monitoring``) and, for the monitoring
API, a role. What a document is (its office, its source) comes from the client, never
from what the caller writes.

Clients live in the store, so every process sees a change at its next request. Only the
SHA-256 of a client's secret is kept: the secret is long and random, so a fast hash is
enough and authenticating a request costs one indexed read. A rotation keeps the
previous secret valid for an overlap, so a system can switch without a gap. Every change
is written to the audit log in its own transaction, and so joins the hash chain.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy.exc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.engine import Connection

from hub.errors import ClientRegistryError
from hub.store.repository import Store, audit_event, aware, utcnow
from hub.store.tables import CLIENTS

# The inbound APIs a client may be allowed to call.
INTAKE = "intake"
CASES = "cases"
EDORECZENIA_WEBHOOK = "edoreczenia-webhook"
MONITORING = "monitoring"
APIS = (INTAKE, CASES, EDORECZENIA_WEBHOOK, MONITORING)

# Whom a client acts for, besides one office of the catalogue.
PORTAL = "portal"
REGION = "region"

MONITORING_ROLES = ("viewer", "operator", "admin")
TOKEN_BYTES = 32

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Client:
    """One authenticated caller, as a door sees it."""

    name: str
    acts_for: str
    sources: frozenset[str]
    apis: frozenset[str]
    role: str | None = None

    @property
    def office(self) -> str | None:
        """The office this client acts for, or None for the portal and the region."""
        return None if self.acts_for in (PORTAL, REGION) else self.acts_for

    @property
    def is_portal(self) -> bool:
        """Whether this is the regional portal (it reads cases on behalf of their party)."""
        return self.acts_for == PORTAL

    def may_call(self, api: str) -> bool:
        """Whether this client may call ``api``."""
        return api in self.apis

    def may_speak_as(self, source: str) -> bool:
        """Whether documents from this client may carry ``source``."""
        return source in self.sources


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A client as the registry keeps it, for ``hub client list``."""

    client: Client
    created_at: datetime
    revoked_at: datetime | None
    previous_valid_until: datetime | None
    has_certificate: bool


def default_apis(acts_for: str) -> frozenset[str]:
    """What a client may call unless told otherwise: an office its intake and case API."""
    if acts_for == PORTAL:
        return frozenset({CASES})
    if acts_for == REGION:
        return frozenset({MONITORING})
    return frozenset({INTAKE, CASES})


def secret_digest(secret: str) -> str:
    """The hex SHA-256 under which a secret is kept and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


class ClientRegistry:
    """The clients of the store: added, listed, rotated, revoked, and recognised."""

    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self._store = store
        self._clock = clock

    def add(
        self,
        name: str,
        acts_for: str,
        *,
        sources: Iterable[str] = (),
        apis: Iterable[str] | None = None,
        role: str | None = None,
        certificate_sha256: str | None = None,
        token: str | None = None,
    ) -> str:
        """Register a client and return its secret (shown once, kept only hashed).

        ``token`` adopts a secret the system already holds (moving from a shared token
        to clients); by default a new random one is made.

        Raises:
            ClientRegistryError: the name is taken, an API or role is unknown, or an
                intake client names no source.
        """
        client = _checked_client(name, acts_for, sources, apis, role)
        token = token or new_token()
        now = self._clock()
        try:
            with self._store.transaction() as connection:
                connection.execute(
                    insert(CLIENTS).values(
                        **_client_columns(client),
                        secret_sha256=secret_digest(token),
                        certificate_sha256=certificate_sha256,
                        created_at=now,
                        updated_at=now,
                    )
                )
                _audit(
                    connection, "client-added", now, client, certificate=bool(certificate_sha256)
                )
        except sqlalchemy.exc.IntegrityError as exc:
            raise ClientRegistryError(
                f"a client named {name!r} (or with that certificate) exists"
            ) from exc
        return token

    def rotate(self, name: str, overlap: timedelta) -> str:
        """Give ``name`` a new secret; the old one stays valid for ``overlap``.

        Raises:
            ClientRegistryError: no active client has that name.
        """
        token = new_token()
        now = self._clock()
        with self._store.transaction() as connection:
            row = _active_row(connection, name)
            connection.execute(
                update(CLIENTS)
                .where(CLIENTS.c.name == name)
                .values(
                    secret_sha256=secret_digest(token),
                    previous_secret_sha256=row.secret_sha256 if overlap > timedelta(0) else None,
                    previous_valid_until=now + overlap if overlap > timedelta(0) else None,
                    updated_at=now,
                )
            )
            _audit(
                connection,
                "client-rotated",
                now,
                _client_of(row),
                overlap_s=overlap.total_seconds(),
            )
        return token

    def revoke(self, name: str) -> None:
        """End ``name``'s access at once (its secrets, old and new, stop working).

        Raises:
            ClientRegistryError: no active client has that name.
        """
        now = self._clock()
        with self._store.transaction() as connection:
            row = _active_row(connection, name)
            connection.execute(
                update(CLIENTS)
                .where(CLIENTS.c.name == name)
                .values(revoked_at=now, previous_secret_sha256=None, updated_at=now)
            )
            _audit(connection, "client-revoked", now, _client_of(row))

    def records(self, *, include_revoked: bool = False) -> list[ClientRecord]:
        """Every client, by name; revoked ones only when asked."""
        query = select(CLIENTS).order_by(CLIENTS.c.name)
        if not include_revoked:
            query = query.where(CLIENTS.c.revoked_at.is_(None))
        with self._store.reading() as connection:
            rows = connection.execute(query).all()
        return [_record_of(row) for row in rows]

    def authenticate(self, token: str) -> Client | None:
        """The active client whose current (or still overlapping) secret ``token`` is."""
        if not token:
            return None
        digest = secret_digest(token)
        now = self._clock()
        query = select(CLIENTS).where(
            CLIENTS.c.revoked_at.is_(None),
            or_(
                CLIENTS.c.secret_sha256 == digest,
                (CLIENTS.c.previous_secret_sha256 == digest)
                & (CLIENTS.c.previous_valid_until > now),
            ),
        )
        with self._store.reading() as connection:
            row = connection.execute(query).first()
        # The database compared digests of random secrets; a timing difference there
        # tells an attacker nothing about a secret it does not already hold.
        return None if row is None else _client_of(row)

    def by_certificate(self, certificate_sha256: str) -> Client | None:
        """The active client identified by the client certificate of that fingerprint."""
        query = select(CLIENTS).where(
            CLIENTS.c.revoked_at.is_(None),
            CLIENTS.c.certificate_sha256 == certificate_sha256.lower(),
        )
        with self._store.reading() as connection:
            row = connection.execute(query).first()
        return None if row is None else _client_of(row)


def certificate_fingerprint(pem: bytes) -> str:
    """The hex SHA-256 of a PEM certificate's DER, as mTLS peers are recognised by.

    Raises:
        ClientRegistryError: ``pem`` holds no certificate.
    """
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ClientRegistryError(f"not a PEM certificate: {exc}") from exc
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def new_token() -> str:
    """A fresh client secret: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _checked_client(
    name: str,
    acts_for: str,
    sources: Iterable[str],
    apis: Iterable[str] | None,
    role: str | None,
) -> Client:
    client = Client(
        name=name,
        acts_for=acts_for,
        sources=frozenset(sources),
        apis=frozenset(apis) if apis is not None else default_apis(acts_for),
        role=role,
    )
    unknown = sorted(client.apis - set(APIS))
    if not name or not acts_for:
        raise ClientRegistryError("a client needs a name and whom it acts for")
    if unknown:
        raise ClientRegistryError(f"unknown API {', '.join(unknown)}: use {', '.join(APIS)}")
    if not client.apis:
        raise ClientRegistryError(f"client {name!r} would be allowed no API")
    if INTAKE in client.apis and client.office is None:
        raise ClientRegistryError("the intake takes documents from an office's systems only")
    if INTAKE in client.apis and not client.sources:
        raise ClientRegistryError(f"client {name!r} calls the intake: name its --source")
    if role is not None and role not in MONITORING_ROLES:
        raise ClientRegistryError(f"role must be one of {', '.join(MONITORING_ROLES)}")
    if MONITORING in client.apis and client.is_portal:
        raise ClientRegistryError("the monitoring API is the region's and the offices'")
    if MONITORING in client.apis and role is None:
        raise ClientRegistryError(f"client {name!r} calls the monitoring API: give it a --role")
    return client


def _client_columns(client: Client) -> dict[str, object]:
    return {
        "name": client.name,
        "acts_for": client.acts_for,
        "sources": json.dumps(sorted(client.sources)),
        "apis": json.dumps(sorted(client.apis)),
        "role": client.role,
    }


def _client_of(row: Row[object]) -> Client:
    return Client(
        name=row.name,
        acts_for=row.acts_for,
        sources=frozenset(json.loads(row.sources)),
        apis=frozenset(json.loads(row.apis)),
        role=row.role,
    )


def _record_of(row: Row[object]) -> ClientRecord:
    return ClientRecord(
        client=_client_of(row),
        created_at=aware(row.created_at),
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
        previous_valid_until=aware(row.previous_valid_until) if row.previous_valid_until else None,
        has_certificate=row.certificate_sha256 is not None,
    )


def _active_row(connection: Connection, name: str) -> Row[object]:
    row = connection.execute(
        select(CLIENTS).where(CLIENTS.c.name == name, CLIENTS.c.revoked_at.is_(None))
    ).first()
    if row is None:
        raise ClientRegistryError(f"no active client named {name!r}")
    return row


def _audit(
    connection: Connection, event: str, now: datetime, client: Client, **extra: object
) -> None:
    audit_event(
        connection,
        None,
        event,
        now,
        client=client.name,
        acts_for=client.acts_for,
        sources=sorted(client.sources),
        apis=sorted(client.apis),
        role=client.role,
        **extra,
    )
