"""``hub poll``: pull every configured national inbox on a schedule, one poller per database.

A round polls each channel once; a channel drains its mailboxes in parallel (a bounded
pool, ``poll_concurrency``), and a mailbox that fails is logged and polled again next
round without holding up the others. The poller follows the region file: an office the
region adds is polled from the next round on. Only the holder of the database lease
polls, and it stores a document only while it still holds the lease, renewed as the
round goes on, so a long sweep cannot outlive it and overlap a successor's.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol, runtime_checkable

from hub.adapters import Accept, PollingInbound, is_polled, polling_inbound
from hub.envelope import Envelope
from hub.errors import HubError, InboundUnavailable, StoreUnavailable
from hub.inbound import MailboxesFailed, accept_into
from hub.logging import get_logger
from hub.region import Region
from hub.reload import RegionSource
from hub.settings import Settings
from hub.singleton import SingletonLease
from hub.store.repository import Store

log = get_logger(__name__)

POLLER_LOCK = "inbound-poller"


@runtime_checkable
class FollowsRegion(Protocol):
    """A polling channel that takes a reloaded region (its offices' mailboxes)."""

    def follow_region(self, region: Region) -> None:
        """Poll ``region``'s offices from the next poll on."""


class Poller:
    """Runs every polling inbound channel of the region in turn."""

    def __init__(
        self, store: Store, region: Region | RegionSource, settings: Settings, holder: str
    ) -> None:
        """Set up every polling channel of the region.

        Args:
            store: where documents are stored, and the lease kept.
            region: the region, or a source that reloads it (then the poller follows it).
            settings: the hub's settings.
            holder: this process's name in the lease.
        """
        self._store = store
        self._settings = settings
        self._lease = SingletonLease(store, POLLER_LOCK, holder, settings.singleton_lease_s)
        self._lease_lock = threading.Lock()
        self._regions = region if isinstance(region, RegionSource) else None
        self._region = region.current() if isinstance(region, RegionSource) else region
        self._channels: list[PollingInbound] = [
            polling_inbound(channel, self._region, settings)
            for channel in self._region.inbound
            if is_polled(channel.kind)
        ]
        self.stop_requested = threading.Event()

    def run(self) -> None:
        """Poll until stopped; a channel that fails is logged and tried again next round."""
        accept = self.accept_while_leased()
        try:
            while not self.stop_requested.is_set():
                fetched = self.poll_round(accept) if self._hold_lock() else 0
                if fetched == 0:
                    self.stop_requested.wait(self._settings.poll_interval_s)
        finally:
            for channel in self._channels:
                channel.stop()
            self._lease.release()

    def poll_round(self, accept: Accept) -> int:
        """Poll each channel once; return how many documents came in."""
        self._follow_region()
        fetched = 0
        for channel in self._channels:
            try:
                fetched += channel.poll_once(accept)
            except MailboxesFailed as exc:
                # Each failed mailbox was logged; the others' documents were stored.
                fetched += exc.taken
                log.warning(
                    "poll_failed",
                    channel=type(channel).__name__,
                    code=exc.code,
                    failed_mailboxes=len(exc.failed),
                    reason=exc.reason,
                )
            except HubError as exc:
                log.warning(
                    "poll_failed", channel=type(channel).__name__, code=exc.code, reason=exc.reason
                )
        return fetched

    def _follow_region(self) -> None:
        if self._regions is None:
            return
        region = self._regions.current()
        if region is self._region:
            return
        self._region = region
        for channel in self._channels:
            if isinstance(channel, FollowsRegion):
                channel.follow_region(region)

    def accept_while_leased(self) -> Accept:
        """The store's ``accept``, which first makes sure this poller still holds the lease.

        The lease is renewed as it comes due, so a sweep longer than the lease keeps it;
        once another poller holds it, nothing more is stored (so nothing confirmed).
        """
        accept = accept_into(self._store)

        def accept_while_leased(
            envelope: Envelope,
            *,
            external_id: str | None = None,
            submitted_at: datetime | None = None,
            rejected_reason: str | None = None,
            case_owner: str | None = None,
        ) -> str:
            if not self._hold_lock():
                # Not stored, so not confirmed: ePUAP keeps it for the lease's holder.
                raise InboundUnavailable("the poller's lease was lost; another poller holds it")
            return accept(
                envelope,
                external_id=external_id,
                submitted_at=submitted_at,
                rejected_reason=rejected_reason,
                case_owner=case_owner,
            )

        return accept_while_leased

    def _hold_lock(self) -> bool:
        # Mailbox drainers renew the lease from several threads; one renewal at a time.
        with self._lease_lock:
            try:
                return self._lease.held()
            except StoreUnavailable as exc:
                log.warning("poll_paused", reason=exc.reason)
                return False
