"""The queue topology of DESIGN.md, declared idempotently by every process that needs it.

::

    exchange <prefix> (direct)
      accepted          → <prefix>.accepted           routing workers
      deliver.<ep>      → <prefix>.deliver.<ep>       one queue per endpoint
      dead              → <prefix>.dead               exhausted or poison
    exchange <prefix>.delay.<N>s (fanout) → <prefix>.delay.<N>s
      TTL N s, then dead-lettered back to <prefix> with the message's own routing key

All queues are durable quorum queues. Work queues dead-letter to ``dead`` after
``DELIVERY_LIMIT`` deliveries, so a message that kills its worker is parked, not looped.
Everything that moves by dead-lettering uses ``at-least-once`` with ``reject-publish``,
since quorum queues otherwise dead-letter at most once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

DELIVERY_LIMIT = 5


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of every exchange and queue, derived from one prefix."""

    prefix: str = "hub"

    @property
    def exchange(self) -> str:
        """The main direct exchange."""
        return self.prefix

    @property
    def accepted_queue(self) -> str:
        """Accepted documents waiting to be routed."""
        return f"{self.prefix}.accepted"

    @property
    def dead_letter_queue(self) -> str:
        """Messages that exhausted their attempts or can never succeed."""
        return f"{self.prefix}.dead"

    accepted_key = "accepted"
    dead_key = "dead"

    @staticmethod
    def delivery_key(endpoint: str) -> str:
        """Routing key of an endpoint's delivery queue."""
        return f"deliver.{endpoint}"

    def delivery_queue(self, endpoint: str) -> str:
        """The work queue of one destination endpoint."""
        return f"{self.prefix}.{self.delivery_key(endpoint)}"

    def delay_exchange(self, delay_s: int) -> str:
        """Fanout exchange in front of one delay tier."""
        return f"{self.prefix}.delay.{delay_s}s"

    def delay_queue(self, delay_s: int) -> str:
        """The queue that holds messages for one backoff tier."""
        return f"{self.prefix}.delay.{delay_s}s"

    def declare(
        self, channel: BlockingChannel, endpoints: Iterable[str], delays_s: Iterable[int]
    ) -> None:
        """Declare exchanges, queues and bindings; safe to repeat."""
        channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        self._declare_work_queue(channel, self.accepted_queue, self.accepted_key)
        for endpoint in endpoints:
            self._declare_work_queue(
                channel, self.delivery_queue(endpoint), self.delivery_key(endpoint)
            )
        channel.queue_declare(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(self.dead_letter_queue, self.exchange, routing_key=self.dead_key)
        for delay_s in delays_s:
            self._declare_delay_tier(channel, delay_s)

    def delete(
        self, channel: BlockingChannel, endpoints: Iterable[str], delays_s: Iterable[int]
    ) -> None:
        """Delete everything :meth:`declare` made (for demo runs and tests)."""
        queues = [self.accepted_queue, self.dead_letter_queue]
        queues += [self.delivery_queue(endpoint) for endpoint in endpoints]
        queues += [self.delay_queue(delay_s) for delay_s in delays_s]
        for queue in queues:
            channel.queue_delete(queue)
        for delay_s in delays_s:
            channel.exchange_delete(self.delay_exchange(delay_s))
        channel.exchange_delete(self.exchange)

    def _declare_work_queue(self, channel: BlockingChannel, queue: str, routing_key: str) -> None:
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.exchange,
            "x-dead-letter-routing-key": self.dead_key,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        channel.queue_declare(queue, durable=True, arguments=arguments)
        channel.queue_bind(queue, self.exchange, routing_key=routing_key)

    def _declare_delay_tier(self, channel: BlockingChannel, delay_s: int) -> None:
        exchange = self.delay_exchange(delay_s)
        channel.exchange_declare(exchange, exchange_type="fanout", durable=True)
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-message-ttl": delay_s * 1000,
            # No routing key here: the message returns with its own, to its own work queue.
            "x-dead-letter-exchange": self.exchange,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        channel.queue_declare(self.delay_queue(delay_s), durable=True, arguments=arguments)
        channel.queue_bind(self.delay_queue(delay_s), exchange)
