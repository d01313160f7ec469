"""The Envelope: one document on its way through the hub, and where it goes."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Address:
    """One system of one office, e.g. ``Address("146501_1", "eod")`` for Warsaw's EOD.

    The office is its TERYT code in the hub's ``WWPPGG_R`` form (voivodeship, county,
    gmina, kind of gmina); ``system`` names the office's domain system.
    """

    office: str
    system: str = ""

    def __str__(self) -> str:
        return f"{self.system}@{self.office}" if self.system else self.office

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``system@office`` or a bare ``office``."""
        system, _, office = text.rpartition("@")
        return cls(office=office, system=system)


# Envelope headers that only the hub itself writes: what a verification found, who
# filed a document (as its platform said), where a case came from, its deadline, who
# signed, what mapped, and the broker's routing and retry headers (``hub-*``). An inbound
# door refuses a caller that sends one (``is_reserved_header``); each door also keeps its
# own allow-list of the route headers a caller may set.
RESERVED_HEADERS = frozenset(
    {
        "signature-checks",
        "forwarded-from",
        "party",
        "epuap-reply-to",
        "edoreczenia-sender",
        "statutory-deadline-days",
        "signed-by",
        "mapped-by",
        "mapped-from",
    }
)
RESERVED_PREFIX = "hub-"


def is_reserved_header(name: str) -> bool:
    """Whether ``name`` is an envelope header only the hub may write (case and ``_`` folded)."""
    folded = name.strip().lower().replace("_", "-")
    return folded in RESERVED_HEADERS or folded.startswith(RESERVED_PREFIX)


def _frozen_headers(headers: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(headers or {}))


@dataclass(frozen=True, slots=True)
class Envelope:
    """A document with the facts the hub needs to route, deliver and trace it.

    Changed only with :func:`dataclasses.replace`; the body is never mutated in place.
    """

    document_type: str
    source: str
    destination: Address
    body: bytes
    content_type: str = "application/xml"
    envelope_id: uuid.UUID = field(default_factory=uuid.uuid4)
    correlation_id: str = ""
    headers: Mapping[str, str] = field(default_factory=_frozen_headers)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.correlation_id:
            # A filing without a case yet opens its own: the envelope id names the case.
            object.__setattr__(self, "correlation_id", str(self.envelope_id))
        if not isinstance(self.headers, MappingProxyType):
            object.__setattr__(self, "headers", _frozen_headers(self.headers))

    @property
    def body_sha256(self) -> str:
        """Hex SHA-256 of the body, the hub's evidence of what it carried."""
        return hashlib.sha256(self.body).hexdigest()

    def with_headers(self, **extra: str) -> Envelope:
        """Return a copy with ``extra`` merged into the headers."""
        return dataclasses.replace(self, headers={**self.headers, **extra})

    def with_destination(self, destination: Address) -> Envelope:
        """Return a copy addressed to ``destination``."""
        return dataclasses.replace(self, destination=destination)

    def describe(self) -> dict[str, Any]:
        """The envelope's facts without its body, for logs and APIs."""
        return {
            "envelope_id": str(self.envelope_id),
            "correlation_id": self.correlation_id,
            "document_type": self.document_type,
            "source": self.source,
            "destination": str(self.destination),
            "content_type": self.content_type,
            "size_bytes": len(self.body),
        }
