"""A database lease that lets exactly one relay or poller run, renewed only when it must be."""

from __future__ import annotations

import time

from hub.store.repository import Store


class SingletonLease:
    """Holds the named lease; :meth:`held` renews it once a third of it is used up."""

    def __init__(self, store: Store, name: str, holder: str, lease_s: float) -> None:
        self._store = store
        self._name = name
        self._holder = holder
        self._lease_s = lease_s
        self._renew_at = 0.0

    def held(self) -> bool:
        """Whether this process holds the lease now (taking or renewing it if due)."""
        now = time.monotonic()
        if now < self._renew_at:
            return True
        if self._store.acquire_singleton(self._name, self._holder, self._lease_s):
            self._renew_at = now + self._lease_s / 3
            return True
        self._renew_at = 0.0
        return False

    def release(self) -> None:
        """Give the lease up so a successor need not wait for it to expire."""
        self._store.release_singleton(self._name, self._holder)
        self._renew_at = 0.0
