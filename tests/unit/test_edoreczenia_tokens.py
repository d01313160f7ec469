"""OAuth2 token caching for the UA API, with a fake fetcher and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from adapters.edoreczenia.tokens import AccessToken, TokenCache
from hub.errors import TransientDeliveryError


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeFetcher:
    """Issues ``token-1``, ``token-2``, ... living ``expires_in_s`` each."""

    expires_in_s: float = 300.0
    issued: list[str] = field(default_factory=list)
    failing: bool = False

    def __call__(self) -> AccessToken:
        if self.failing:
            raise TransientDeliveryError("token endpoint down")
        self.issued.append(f"token-{len(self.issued) + 1}")
        return AccessToken(self.issued[-1], self.expires_in_s)


def test_the_token_is_fetched_once_and_reused() -> None:
    fetcher, clock = FakeFetcher(), FakeClock()
    cache = TokenCache(fetcher, clock)

    tokens = [cache.current() for _ in range(3)]

    assert tokens == ["token-1"] * 3
    assert fetcher.issued == ["token-1"]


def test_the_token_is_renewed_thirty_seconds_before_it_expires() -> None:
    fetcher, clock = FakeFetcher(expires_in_s=300), FakeClock()
    cache = TokenCache(fetcher, clock)
    cache.current()

    clock.now += 269.9
    assert cache.current() == "token-1"
    clock.now += 0.1
    assert cache.current() == "token-2"


def test_a_short_lived_token_is_renewed_at_half_its_life() -> None:
    fetcher, clock = FakeFetcher(expires_in_s=20), FakeClock()
    cache = TokenCache(fetcher, clock)
    cache.current()

    clock.now += 9.9
    assert cache.current() == "token-1"
    clock.now += 0.1
    assert cache.current() == "token-2"


def test_a_rejected_token_is_replaced() -> None:
    fetcher = FakeFetcher()
    cache = TokenCache(fetcher, FakeClock())

    rejected = cache.current()

    assert cache.renew(rejected) == "token-2"
    assert cache.current() == "token-2"


def test_a_token_already_replaced_by_another_caller_is_not_renewed_again() -> None:
    fetcher = FakeFetcher()
    cache = TokenCache(fetcher, FakeClock())
    stale = cache.current()
    cache.renew(stale)

    assert cache.renew(stale) == "token-2"
    assert fetcher.issued == ["token-1", "token-2"]


def test_a_failed_fetch_caches_nothing() -> None:
    fetcher, clock = FakeFetcher(), FakeClock()
    cache = TokenCache(fetcher, clock)
    fetcher.failing = True

    with pytest.raises(TransientDeliveryError):
        cache.current()

    fetcher.failing = False
    assert cache.current() == "token-1"
