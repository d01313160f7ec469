"""``hub poll``: pull every configured national inbox on a schedule, one poller per database."""

from __future__ import annotations

import threading

from hub.adapters import Accept, PollingInbound, is_polled, polling_inbound
from hub.errors import HubError, StoreUnavailable
from hub.inbound import accept_into
from hub.logging import get_logger
from hub.region import Region
from hub.settings import Settings
from hub.singleton import SingletonLease
from hub.store.repository import Store

log = get_logger(__name__)

POLLER_LOCK = "inbound-poller"


class Poller:
    """Runs every polling inbound channel of the region in turn."""

    def __init__(self, store: Store, region: Region, settings: Settings, holder: str) -> None:
        self._store = store
        self._settings = settings
        self._lease = SingletonLease(store, POLLER_LOCK, holder, settings.singleton_lease_s)
        self._channels: list[PollingInbound] = [
            polling_inbound(channel, region, settings)
            for channel in region.inbound
            if is_polled(channel.kind)
        ]
        self.stop_requested = threading.Event()

    def run(self) -> None:
        """Poll until stopped; a channel that fails is logged and tried again next round."""
        accept = accept_into(self._store)
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
        fetched = 0
        for channel in self._channels:
            try:
                fetched += channel.poll_once(accept)
            except HubError as exc:
                log.warning(
                    "poll_failed", channel=type(channel).__name__, code=exc.code, reason=exc.reason
                )
        return fetched

    def _hold_lock(self) -> bool:
        try:
            return self._lease.held()
        except StoreUnavailable as exc:
            log.warning("poll_paused", reason=exc.reason)
            return False
