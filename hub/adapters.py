"""How adapters plug in: the contracts they fulfil and the entry points they are found by.

Adapter kinds are declared under the ``hub.adapters`` entry-point group (in
``pyproject.toml``); the hub loads what is installed and never names a concrete adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from hub.envelope import Envelope
from hub.errors import ConfigurationError
from hub.receipts import Evidence
from hub.region import EndpointConfig, InboundConfig, Region
from hub.settings import Settings

ADAPTER_GROUP = "hub.adapters"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What the destination said when it took a document, with any evidence it issued."""

    endpoint: str
    external_reference: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duplicate: bool = False
    evidence: tuple[Evidence, ...] = ()
    # The kind of receipt that will come later on its own (e.g. "UPD"), if any.
    awaits: str | None = None


@runtime_checkable
class OutboundAdapter(Protocol):
    """Delivers envelopes to one endpoint.

    ``deliver`` raises ``TransientDeliveryError`` (retry later) or
    ``PermanentDeliveryError`` (dead letter); anything else is a bug.
    """

    def setup(self) -> None:
        """Open what the adapter needs (sessions, clients); called once before use."""

    def deliver(self, envelope: Envelope) -> DeliveryReceipt:
        """Hand ``envelope`` to the destination and return its receipt."""

    def stop(self) -> None:
        """Release what :meth:`setup` opened."""


class Accept(Protocol):
    """The hub's door for inbound adapters: store an envelope durably, or keep it as rejected."""

    def __call__(
        self,
        envelope: Envelope,
        *,
        external_id: str | None = ...,
        submitted_at: datetime | None = ...,
        rejected_reason: str | None = ...,
        case_owner: str | None = ...,
    ) -> str:
        """Return ``accepted``, ``rejected`` or ``duplicate`` once the store committed.

        With ``case_owner`` (the office an authenticated caller acts for), the case the
        envelope names must be that office's, or ``CaseNotFound`` is raised and nothing
        is stored.
        """


@runtime_checkable
class PollingInbound(Protocol):
    """An inbound channel the hub polls (a national inbox, a folder)."""

    def setup(self) -> None:
        """Open clients; called once before the first poll."""

    def poll_once(self, accept: Accept) -> int:
        """Fetch what is waiting, hand each document to ``accept``, return how many."""

    def stop(self) -> None:
        """Release what :meth:`setup` opened."""


OutboundFactory = Callable[[EndpointConfig, Settings], OutboundAdapter]
InboundFactory = Callable[[InboundConfig, Region, Settings], PollingInbound]


def load_adapter_kind(kind: str) -> Any:
    """The class registered for ``kind`` under the ``hub.adapters`` entry points.

    Raises:
        ConfigurationError: no installed package provides that kind.
    """
    for entry_point in entry_points(group=ADAPTER_GROUP):
        if entry_point.name == kind:
            return entry_point.load()
    installed = sorted(entry_point.name for entry_point in entry_points(group=ADAPTER_GROUP))
    raise ConfigurationError(f"no adapter of kind {kind!r} is installed (installed: {installed})")


def outbound_adapter(endpoint: EndpointConfig, settings: Settings) -> OutboundAdapter:
    """Instantiate and set up the outbound adapter for ``endpoint``."""
    factory: OutboundFactory = load_adapter_kind(endpoint.kind)
    adapter = factory(endpoint, settings)
    adapter.setup()
    return adapter


def is_polled(kind: str) -> bool:
    """Whether inbound channels of ``kind`` are polled (others are pushed to over HTTP)."""
    return hasattr(load_adapter_kind(kind), "poll_once")


def polling_inbound(channel: InboundConfig, region: Region, settings: Settings) -> PollingInbound:
    """Instantiate and set up the polling adapter for ``channel``."""
    factory: InboundFactory = load_adapter_kind(channel.kind)
    adapter = factory(channel, region, settings)
    adapter.setup()
    return adapter
