"""The queue topology of DESIGN.md, declared idempotently by every process that needs it.

::

    exchange <prefix> (direct)
      accepted          → <prefix>.accepted           routing workers
      accepted.bulk     → <prefix>.accepted.bulk      the same, for an office in a burst
      deliver.<n>       → <prefix>.deliver.<n>        n < shards: deliveries, by endpoint
      bulk.<n>          → <prefix>.bulk.<n>           the same, for endpoints in a burst
      dead              → <prefix>.dead               exhausted or poison
    exchange <prefix>.delay.<N>s (fanout) → <prefix>.delay.<N>s
      TTL N s, then dead-lettered back to <prefix> with the message's own routing key

The number of queues does not grow with the region: an endpoint's deliveries go to the
shard its name hashes to, and the endpoint travels in a header. Isolating one endpoint
from another is the workers' job (circuits, a bounded number of deliveries in flight per
endpoint, holding what cannot go now in the delay tiers); the bulk lanes keep a burst to
one office (thousands of documents) from queueing ahead of every other office's documents,
first to be routed (the relay picks the lane), then to be delivered (the router picks it).

All queues are durable quorum queues. Work queues dead-letter to ``dead`` after
``DELIVERY_LIMIT`` deliveries, so a message that kills its worker is parked, not looped.
Everything that moves by dead-lettering uses ``at-least-once`` with ``reject-publish``,
since quorum queues otherwise dead-letter at most once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

DELIVERY_LIMIT = 5


class Lane(StrEnum):
    """Which of the two sets of delivery shards a delivery travels in."""

    NORMAL = "deliver"
    BULK = "bulk"


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of every exchange and queue, derived from one prefix, a shard count and tiers."""

    prefix: str = "hub"
    shards: int = 2
    delays_s: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError("a topology needs at least one delivery shard")

    @property
    def exchange(self) -> str:
        """The main direct exchange."""
        return self.prefix

    @property
    def accepted_queue(self) -> str:
        """Accepted documents waiting to be routed."""
        return f"{self.prefix}.accepted"

    @property
    def accepted_queues(self) -> list[str]:
        """Both routing queues (normal and bulk lane): what a routing worker consumes."""
        return [f"{self.prefix}.{self.accepted_key_in(lane)}" for lane in Lane]

    def accepted_key_in(self, lane: Lane) -> str:
        """The routing key of the accepted queue of ``lane``."""
        return self.accepted_key if lane is Lane.NORMAL else f"{self.accepted_key}.{lane.value}"

    @property
    def dead_letter_queue(self) -> str:
        """Messages that exhausted their attempts or can never succeed."""
        return f"{self.prefix}.dead"

    accepted_key = "accepted"
    dead_key = "dead"

    def shard_of(self, endpoint: str) -> int:
        """The shard an endpoint's deliveries travel in (stable across processes and runs)."""
        return zlib.crc32(endpoint.encode()) % self.shards

    def delivery_key(self, endpoint: str, lane: Lane = Lane.NORMAL) -> str:
        """Routing key of the shard that carries ``endpoint``'s deliveries in ``lane``."""
        return f"{lane.value}.{self.shard_of(endpoint)}"

    def delivery_queue(self, endpoint: str, lane: Lane = Lane.NORMAL) -> str:
        """The work queue that carries ``endpoint``'s deliveries in ``lane``."""
        return f"{self.prefix}.{self.delivery_key(endpoint, lane)}"

    @property
    def delivery_queues(self) -> list[str]:
        """Every delivery shard of both lanes: what a delivering worker consumes."""
        return [f"{self.prefix}.{key}" for key in self._delivery_keys()]

    def delay_exchange(self, delay_s: int) -> str:
        """Fanout exchange in front of one delay tier."""
        return f"{self.prefix}.delay.{delay_s}s"

    def delay_queue(self, delay_s: int) -> str:
        """The queue that holds messages for one backoff tier."""
        return f"{self.prefix}.delay.{delay_s}s"

    @property
    def queues(self) -> list[str]:
        """Every queue :meth:`declare` makes; a constant number, whatever the region."""
        delays = [self.delay_queue(delay_s) for delay_s in self.delays_s]
        return [*self.accepted_queues, *self.delivery_queues, *delays, self.dead_letter_queue]

    def declare(self, channel: BlockingChannel) -> None:
        """Declare exchanges, queues and bindings; safe to repeat."""
        channel.exchange_declare(self.exchange, exchange_type="direct", durable=True)
        for lane in Lane:
            key = self.accepted_key_in(lane)
            self._declare_work_queue(channel, f"{self.prefix}.{key}", key)
        for key in self._delivery_keys():
            self._declare_work_queue(channel, f"{self.prefix}.{key}", key)
        channel.queue_declare(
            self.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        channel.queue_bind(self.dead_letter_queue, self.exchange, routing_key=self.dead_key)
        for delay_s in self.delays_s:
            self._declare_delay_tier(channel, delay_s)

    def delete(self, channel: BlockingChannel) -> None:
        """Delete everything :meth:`declare` made (for demo runs and tests)."""
        for queue in self.queues:
            channel.queue_delete(queue)
        for delay_s in self.delays_s:
            channel.exchange_delete(self.delay_exchange(delay_s))
        channel.exchange_delete(self.exchange)

    def _delivery_keys(self) -> Iterable[str]:
        for lane in Lane:
            for shard in range(self.shards):
                yield f"{lane.value}.{shard}"

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
