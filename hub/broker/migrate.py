"""Moving a hub of an earlier version off its per-endpoint queues, onto the constant topology.

Earlier versions declared a quorum queue per endpoint, ``<prefix>.deliver.<endpoint>``,
bound to the ``<prefix>`` exchange with routing key ``deliver.<endpoint>``. Today an
endpoint's deliveries travel in the shard :meth:`Topology.delivery_queue` names. A region
that upgrades has deliveries waiting in the old queues, and others waiting in the delay
tiers, which dead-letter them back with their old routing key. :class:`QueueMigration`

1. declares today's topology (the shards must exist before anything points at them);
2. binds every endpoint's legacy key ``deliver.<endpoint>`` to the endpoint's shard, so a
   message coming back from a delay tier with its old key lands where it belongs, and
   right after that unbinds the key from the endpoint's old queue, if there is one (found
   by passive declare: the management API is off, so the region's endpoint names are the
   only list there is). The new bindings stay: a delivery consumed from a shard keeps the
   routing key it came with and goes through the delay tiers with it on its next retry;
3. for each old queue, moves its messages to the shard (``basic.get``, republish with
   publisher confirms, ack only what was confirmed) and deletes it once empty.

RabbitMQ 3.10 refuses ``queue.delete`` with ``if-empty`` on a quorum queue (540
NOT_IMPLEMENTED, closing the connection), so "once empty" is a passive declare showing no
message ready and no holder, then a plain delete. Nothing routes to the queue any more by
then (its key is unbound). A quorum queue counts as consumers both its consumers and the
messages taken by ``basic.get`` and not yet acked, so an old worker still consuming the
queue keeps it in place, and so would a second migration draining it; a migration holds
an exclusive queue as a lock while it runs (the broker removes it with the connection),
so a second one is refused.

Nothing is lost if the migration dies at any point: a message is acked in its old queue
only after the broker confirmed its copy in the shard, so one republished but not acked
comes back and is republished by the next run. That copy has the same message id, and
every consumer deduplicates by message id. Between an endpoint's bind and unbind (one
round trip) a message back from a delay tier is routed to both its old queue and its
shard: a duplicate of the same kind. Unbinding first would leave a moment in which no
queue takes the key, and the broker drops what is dead-lettered to no queue.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pika.exceptions
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from hub.broker.connection import translate_broker_errors
from hub.broker.publisher import (
    BatchOutcome,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishRefused,
)
from hub.broker.topology import Topology
from hub.errors import HubError

# Messages taken from an old queue before their copies are published and confirmed
# together: asynchronous confirms cost the broker a tenth of one confirm per message.
DEFAULT_BATCH_SIZE = 100
# How many times a queue found not empty after its drain (an old worker returned messages
# to it) is drained again before it is left for the next run.
DELETE_ATTEMPTS = 3
# How long a drained queue may still count our own acks as holders (see _settled_depth),
# and how often it is asked meanwhile.
SETTLE_WAIT_S = 5.0
SETTLE_POLL_S = 0.05
# A progress report inside a long queue every this many messages moved.
PROGRESS_EVERY_MESSAGES = 1000

NOT_FOUND = 404
RESOURCE_LOCKED = 405


def legacy_key(endpoint: str) -> str:
    """The routing key an earlier version delivered ``endpoint``'s messages with."""
    return f"deliver.{endpoint}"


def legacy_queue(topology: Topology, endpoint: str) -> str:
    """The queue an earlier version kept ``endpoint``'s deliveries in."""
    return f"{topology.prefix}.{legacy_key(endpoint)}"


def lock_queue(topology: Topology) -> str:
    """The exclusive queue a running migration holds, so that two never run at once."""
    return f"{topology.prefix}.migrate-queues.lock"


class MigrationRunning(HubError):
    """Another migration of the same hub holds the lock; two would race on the old queues."""

    code = "migration-running"


@dataclass(frozen=True, slots=True)
class LegacyQueue:
    """One per-endpoint queue found on the broker, with the messages ready in it."""

    endpoint: str
    name: str
    messages: int


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """Where a migration stands: reported after each queue, and inside long ones."""

    queues_done: int
    queues_total: int
    messages_moved: int
    queue: str


@dataclass(slots=True)
class MigrationSummary:
    """What a migration (or a dry run) found and did."""

    endpoints: int
    queues_found: int
    messages_found: int
    keys_bound: int = 0
    queues_done: int = 0
    queues_deleted: int = 0
    messages_moved: int = 0
    # Old queues not deleted: still consumed by an old worker, or refilled after every
    # drain; they keep their messages for a re-run.
    queues_left: list[str] = field(default_factory=list)


ProgressReport = Callable[[MigrationProgress], None]


class QueueMigration:
    """Moves the deliveries of every legacy per-endpoint queue onto their shards.

    Args:
        connection: an open connection to the broker; the migration opens its channels on it.
        amqp_url: the broker's URL(s), for error messages.
        topology: today's topology (prefix, shards, delay tiers).
        batch_size: messages taken from an old queue per confirmed batch.
        publisher: what republishes the messages (default: a :class:`ConfirmingPublisher`
            on ``connection``).
        on_progress: called after each queue, and every ``PROGRESS_EVERY_MESSAGES``.
    """

    def __init__(
        self,
        connection: BlockingConnection,
        amqp_url: str,
        topology: Topology,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        publisher: ConfirmingPublisher | None = None,
        on_progress: ProgressReport | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("a batch holds at least one message")
        self._connection = connection
        self._amqp_url = amqp_url
        self._topology = topology
        self._batch_size = batch_size
        self._publisher = publisher
        self._on_progress = on_progress or (lambda _progress: None)
        self._channel: BlockingChannel | None = None

    def survey(self, endpoints: Sequence[str]) -> list[LegacyQueue]:
        """The legacy queues of ``endpoints`` that exist, by passive declare (changes nothing).

        Raises:
            BrokerUnavailable: the connection dropped.
        """
        found = []
        for endpoint in _unique(endpoints):
            name = legacy_queue(self._topology, endpoint)
            if name in self._topology.queues:
                # An endpoint named like a shard ("0") would have today's queue drained into
                # itself; endpoint names are system@office, so this is a guard, not a case.
                continue
            depth = self._ready_messages(name)
            if depth is not None:
                found.append(LegacyQueue(endpoint, name, depth))
        return found

    def dry_run(self, endpoints: Sequence[str]) -> MigrationSummary:
        """Count the legacy queues and their messages, declaring and moving nothing."""
        legacy = self.survey(endpoints)
        return MigrationSummary(
            endpoints=len(_unique(endpoints)),
            queues_found=len(legacy),
            messages_found=sum(queue.messages for queue in legacy),
        )

    def run(self, endpoints: Sequence[str]) -> MigrationSummary:
        """Bind every endpoint's legacy key to its shard, then drain and delete each old queue.

        Safe to run again after an interruption, and on a hub already migrated.

        Raises:
            MigrationRunning: another migration of this hub is running.
            BrokerUnavailable: the connection dropped (run again: nothing is lost).
            PublishRefused: the broker refused a republished message; it stays in its old queue.
        """
        endpoints = _unique(endpoints)
        self._take_lock()
        with translate_broker_errors(self._amqp_url):
            self._topology.declare(self._live_channel())
        legacy = self.survey(endpoints)
        summary = MigrationSummary(
            endpoints=len(endpoints),
            queues_found=len(legacy),
            messages_found=sum(queue.messages for queue in legacy),
        )
        summary.keys_bound = self._bind_legacy_keys(endpoints, legacy)
        for queue in legacy:
            self._migrate_queue(queue, summary)
            summary.queues_done += 1
            self._report(summary, queue.name)
        return summary

    def _take_lock(self) -> None:
        with self._broker_refusal(RESOURCE_LOCKED) as refused:
            # Exclusive, so the broker refuses it to any other connection and removes it
            # when this one closes, however the migration ends.
            self._live_channel().queue_declare(
                lock_queue(self._topology), exclusive=True, auto_delete=True
            )
        if refused:
            raise MigrationRunning(
                f"another migration of the {self._topology.prefix!r} hub's queues is running "
                f"(it holds {lock_queue(self._topology)}); wait for it to finish"
            )

    def _report(self, summary: MigrationSummary, queue: str) -> None:
        self._on_progress(
            MigrationProgress(
                summary.queues_done, summary.queues_found, summary.messages_moved, queue
            )
        )

    def _bind_legacy_keys(self, endpoints: Sequence[str], legacy: Sequence[LegacyQueue]) -> int:
        # Every endpoint, not only those with a queue left: a delay tier may still hold
        # messages of an endpoint whose old queue an earlier run already deleted.
        old_queues = {queue.endpoint: queue.name for queue in legacy}
        exchange = self._topology.exchange
        with translate_broker_errors(self._amqp_url):
            channel = self._live_channel()
            for endpoint in endpoints:
                key = legacy_key(endpoint)
                channel.queue_bind(self._topology.delivery_queue(endpoint), exchange, key)
                if endpoint in old_queues:
                    # Bound to the shard already, so the key stays routable throughout.
                    channel.queue_unbind(old_queues[endpoint], exchange, key)
        return len(endpoints)

    def _migrate_queue(self, queue: LegacyQueue, summary: MigrationSummary) -> None:
        for _attempt in range(DELETE_ATTEMPTS):
            self._drain(queue, summary)
            ready, holders = self._settled_depth(queue.name)
            if holders:
                break  # an old worker still takes from it; it may return what it holds
            if not ready:
                with translate_broker_errors(self._amqp_url):
                    self._live_channel().queue_delete(queue.name)
                summary.queues_deleted += 1
                return
        summary.queues_left.append(queue.name)

    def _settled_depth(self, queue: str) -> tuple[int, int]:
        """Messages ready in ``queue``, and what holds some of it once our acks are applied.

        A quorum queue's ``consumer_count`` counts its consumers and also every message
        taken by ``basic.get`` and not yet settled, and an ack is applied asynchronously
        (through the queue's Raft log): right after a drain it still counts our last batch.
        So the count is read until it is zero, for at most ``SETTLE_WAIT_S``; what remains
        is someone else's (measured: our acks are applied within a millisecond or so).
        """
        deadline = time.monotonic() + SETTLE_WAIT_S
        ready, holders = self._depth(queue)
        while holders and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_S)
            ready, holders = self._depth(queue)
        return ready, holders

    def _drain(self, queue: LegacyQueue, summary: MigrationSummary) -> None:
        reported = summary.messages_moved
        while batch := self._take_batch(queue.name):
            self._move(queue, batch)
            summary.messages_moved += len(batch)
            if summary.messages_moved - reported >= PROGRESS_EVERY_MESSAGES:
                reported = summary.messages_moved
                self._report(summary, queue.name)

    def _take_batch(self, queue: str) -> list[_Taken]:
        batch: list[_Taken] = []
        with translate_broker_errors(self._amqp_url):
            channel = self._live_channel()
            while len(batch) < self._batch_size:
                method, properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                batch.append(_Taken(method.delivery_tag, properties, body))
        return batch

    def _move(self, queue: LegacyQueue, batch: Sequence[_Taken]) -> None:
        key = self._topology.delivery_key(queue.endpoint)
        copies = [
            OutgoingMessage(self._topology.exchange, key, taken.properties, taken.body)
            for taken in batch
        ]
        outcome = self._publisher_on_connection().publish_batch(copies)
        self._settle(queue, batch, outcome)

    def _settle(self, queue: LegacyQueue, batch: Sequence[_Taken], outcome: BatchOutcome) -> None:
        with translate_broker_errors(self._amqp_url):
            channel = self._live_channel()
            if outcome.all_confirmed:
                channel.basic_ack(batch[-1].delivery_tag, multiple=True)
                return
            # Ack what has its copy; what the broker refused goes back to the old queue.
            for position, taken in enumerate(batch):
                if position in outcome.confirmed:
                    channel.basic_ack(taken.delivery_tag)
                else:
                    channel.basic_nack(taken.delivery_tag, requeue=True)
        refused = len(batch) - len(outcome.confirmed)
        raise PublishRefused(
            f"the broker refused {refused} message(s) from {queue.name} for "
            f"{self._topology.delivery_queue(queue.endpoint)}; they stay in {queue.name}"
        )

    def _depth(self, queue: str) -> tuple[int, int]:
        """Messages ready in ``queue`` and consumers on it (a queue gone counts as empty)."""
        with self._broker_refusal(NOT_FOUND):
            declared = self._live_channel().queue_declare(queue, passive=True)
            return int(declared.method.message_count), int(declared.method.consumer_count)
        return 0, 0

    def _ready_messages(self, queue: str) -> int | None:
        with self._broker_refusal(NOT_FOUND):
            declared = self._live_channel().queue_declare(queue, passive=True)
            return int(declared.method.message_count)
        return None  # no such queue

    @contextlib.contextmanager
    def _broker_refusal(self, reply_code: int) -> Iterator[list[bool]]:
        """Turn the broker closing the channel with ``reply_code`` into a flag, not an error.

        A passive declare of a missing queue (404) or of a lock another connection holds
        (405) closes the channel: the next operation opens another.
        """
        refused: list[bool] = []
        with translate_broker_errors(self._amqp_url):
            try:
                yield refused
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != reply_code:
                    raise
                refused.append(True)
                self._channel = None

    def _live_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            return self._open_channel()
        return self._channel

    def _open_channel(self) -> BlockingChannel:
        with translate_broker_errors(self._amqp_url):
            self._channel = self._connection.channel()
        return self._channel

    def _publisher_on_connection(self) -> ConfirmingPublisher:
        if self._publisher is None:
            self._publisher = ConfirmingPublisher(self._connection, self._amqp_url)
        return self._publisher


@dataclass(frozen=True, slots=True)
class _Taken:
    """A message taken from an old queue and not yet acked there."""

    delivery_tag: int
    properties: pika.spec.BasicProperties
    body: bytes


def _unique(endpoints: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(endpoints))
