"""Backoff across attempts: which delay tier a failed delivery waits in, and when to give up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Fixed delay tiers (one RabbitMQ delay queue each), a maximum age and attempt cap."""

    delays_s: tuple[int, ...]
    max_attempts: int
    max_age_s: float = float("inf")

    def gives_up_after(self, attempt_number: int, age_s: float = 0.0) -> bool:
        """Whether attempt ``attempt_number`` (1-based) was the last one allowed.

        ``age_s`` is how long the delivery has been trying (since it was planned, or
        replayed): once the next attempt could only come after ``max_age_s``, it stops.
        """
        next_attempt_age_s = age_s + self.delay_after(attempt_number)
        return attempt_number >= self.max_attempts or next_attempt_age_s > self.max_age_s

    def delay_after(self, attempt_number: int, retry_after_s: float | None = None) -> int:
        """The tier to wait in after attempt ``attempt_number`` failed.

        The n-th failure waits in the n-th tier (the last tier repeats); a destination's
        Retry-After moves it up to the first tier at least that long.
        """
        delay = self.delays_s[min(attempt_number, len(self.delays_s)) - 1]
        if retry_after_s is not None:
            delay = max(delay, shortest_tier_at_least(self.delays_s, retry_after_s))
        return delay


def shortest_tier_at_least(delays_s: Sequence[int], wait_s: float) -> int:
    """The shortest tier that waits at least ``wait_s`` (or the longest tier there is)."""
    longer = [delay for delay in sorted(delays_s) if delay >= wait_s]
    return longer[0] if longer else max(delays_s)
