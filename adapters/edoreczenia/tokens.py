"""OAuth2 access tokens for the UA API: fetched once, reused, renewed shortly before expiry.

The fetching is passed in (a callable), so the caching rules are tested with a fake
fetcher and a fake clock, without HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_REFRESH_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token as the token endpoint issued it (``access_token``, ``expires_in``)."""

    value: str
    expires_in_s: float


TokenFetcher = Callable[[], AccessToken]


class TokenCache:
    """One token shared by every call, renewed ``refresh_margin_s`` before it expires.

    Thread-safe: the inbound poller drains several mailboxes at once, and they must not
    each fetch a token of their own.
    """

    def __init__(
        self,
        fetch: TokenFetcher,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_s = refresh_margin_s
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def current(self) -> str:
        """The cached token, fetching a new one first if it is missing or about to expire.

        Raises:
            Whatever the fetcher raises; nothing is cached then.
        """
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._store(self._fetch())
            assert self._token is not None
            return self._token

    def renew(self, rejected: str) -> str:
        """A fresh token after the service answered 401 to ``rejected``.

        If another thread already replaced ``rejected``, its token is reused instead of
        fetching yet another.

        Raises:
            Whatever the fetcher raises.
        """
        with self._lock:
            if self._token is None or self._token == rejected:
                self._store(self._fetch())
            assert self._token is not None
            return self._token

    def _store(self, token: AccessToken) -> None:
        # A token living shorter than twice the margin would be renewed on every call;
        # renewing at half its life keeps it useful without risking an expired call.
        margin_s = min(self._margin_s, token.expires_in_s / 2)
        self._token = token.value
        self._renew_at = self._clock() + token.expires_in_s - margin_s
