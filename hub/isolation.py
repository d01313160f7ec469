"""Keeping endpoints out of each other's way when they share delivery queues.

Three small parts, each used by the workers:

- :class:`EndpointSlots`: at most N deliveries to one endpoint in flight per worker
  process, so a slow system (5 s an answer) holds N handler threads, never all of them;
- :class:`HoldPolicy`: how long a delivery that cannot go now (its endpoint busy, or its
  circuit open) waits in the delay tiers, longer each time it is held, so thousands of
  documents for a down office cost a few republishes each, not one every few seconds;
- :class:`BurstMeter`: which lane the router puts a delivery in; an endpoint that takes
  more than its share (a burst of thousands to one office) goes to the bulk lane, so the
  other endpoints' documents do not queue behind it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hub.broker.topology import Lane

HELD_HEADER = "hub-held"  # how many times this delivery was held without an attempt


class EndpointSlots:
    """A bounded number of in-flight deliveries per endpoint, shared by a process's threads.

    A delivery that finds its endpoint's slots taken may wait a moment for one (a fast
    system frees a slot within milliseconds); only half as many may wait as there are
    slots (at least one), so a slow system holds at most one and a half times its bound of
    handler threads, and the rest of its deliveries are held in the delay tiers instead.
    """

    def __init__(self, per_endpoint: int) -> None:
        self._limit = per_endpoint
        self._waiters_allowed = max(1, per_endpoint // 2)
        self._busy: dict[str, int] = {}
        self._waiting: dict[str, int] = {}
        self._freed = threading.Condition()

    def try_take(self, endpoint: str, wait_s: float = 0.0) -> bool:
        """Take one of ``endpoint``'s slots, waiting up to ``wait_s``; False if none came."""
        deadline = time.monotonic() + wait_s
        with self._freed:
            if self._take_now(endpoint):
                return True
            if wait_s <= 0 or self._waiting.get(endpoint, 0) >= self._waiters_allowed:
                return False
            self._waiting[endpoint] = self._waiting.get(endpoint, 0) + 1
            try:
                while (left := deadline - time.monotonic()) > 0:
                    self._freed.wait(left)
                    if self._take_now(endpoint):
                        return True
                return False
            finally:
                self._waiting[endpoint] -= 1
                if not self._waiting[endpoint]:
                    del self._waiting[endpoint]

    def give_back(self, endpoint: str) -> None:
        """Return a slot taken with :meth:`try_take`."""
        with self._freed:
            left = self._busy.get(endpoint, 0) - 1
            if left > 0:
                self._busy[endpoint] = left
            else:
                self._busy.pop(endpoint, None)
            self._freed.notify_all()

    def in_use(self, endpoint: str) -> int:
        """How many of ``endpoint``'s slots are taken now."""
        with self._freed:
            return self._busy.get(endpoint, 0)

    def _take_now(self, endpoint: str) -> bool:
        taken = self._busy.get(endpoint, 0)
        if taken >= self._limit:
            return False
        self._busy[endpoint] = taken + 1
        return True


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """The delay tier a held delivery waits in: the n-th hold the n-th tier, capped."""

    tiers_s: tuple[int, ...]
    cap_s: int = 600

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiers_s", tuple(sorted(set(self.tiers_s))))

    def delay(self, times_held: int, at_least_s: float = 0.0, cap_s: int | None = None) -> int:
        """The tier for a delivery held ``times_held`` times before, waiting ``at_least_s``
        (and at most ``cap_s``, the policy's cap unless given, where that allows)."""
        cap = self.cap_s if cap_s is None else min(cap_s, self.cap_s)
        usable = [tier for tier in self.tiers_s if tier <= cap] or [min(self.tiers_s)]
        by_count = usable[min(times_held, len(usable) - 1)]
        longer = [tier for tier in self.tiers_s if tier >= at_least_s]
        floor = longer[0] if longer else max(self.tiers_s)
        return max(by_count, floor)


@dataclass
class BurstMeter:
    """A token bucket per endpoint: ``burst`` deliveries at once, refilled over ``window_s``.

    Shared by a process's routing threads. Each process measures on its own, so with P
    routing processes an endpoint may take up to P × ``burst`` before it moves lanes:
    close enough to tell a burst of thousands from an office's ordinary traffic.
    """

    burst: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lane_of(self, endpoint: str) -> Lane:
        """The lane for one more delivery to ``endpoint`` (and count it)."""
        if self.burst <= 0:
            return Lane.NORMAL
        now = self.clock()
        rate = self.burst / self.window_s
        with self._lock:
            tokens, since = self._tokens.get(endpoint, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) * rate)
            if tokens < 1.0:
                self._tokens[endpoint] = (tokens, now)
                return Lane.BULK
            self._tokens[endpoint] = (tokens - 1.0, now)
            if len(self._tokens) > 4 * 4096:
                self._forget_full(now, rate)
            return Lane.NORMAL

    def _forget_full(self, now: float, rate: float) -> None:
        # Buckets that refilled are the same as no bucket: keep the table small.
        for name, (tokens, since) in list(self._tokens.items()):
            if tokens + (now - since) * rate >= self.burst:
                del self._tokens[name]


def times_held(headers: dict[str, object] | None) -> int:
    """The hold count a message carries (0 for one never held)."""
    value = (headers or {}).get(HELD_HEADER, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def all_tiers(*tier_sets: Sequence[int]) -> tuple[int, ...]:
    """Every delay tier named by the settings, once each, shortest first."""
    return tuple(sorted({tier for tiers in tier_sets for tier in tiers}))
