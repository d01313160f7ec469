"""``hub broker migrate-queues`` against the real broker: per-endpoint queues onto the shards.

Each test declares the layout of earlier versions under a prefix of its own (a queue per
endpoint bound with ``deliver.<endpoint>``, a 1 s delay tier, the dead-letter queue),
fills it, migrates, and reads every shard to the last message. At most 11 queues a test
(3 old, 4 shards, accepted, the tier, dead, the migration's lock), all deleted afterwards.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner, Result
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from hub.broker.connection import close_quietly, connect
from hub.broker.migrate import (
    MigrationRunning,
    QueueMigration,
    legacy_key,
    legacy_queue,
    lock_queue,
)
from hub.broker.publisher import BatchOutcome, ConfirmingPublisher, OutgoingMessage
from hub.broker.topology import DELIVERY_LIMIT, Topology
from hub.cli import broker
from hub.errors import BrokerUnavailable
from hub.settings import Settings

# Two in shard 1 and one in shard 0 of two shards (crc32 of the name, modulo 2).
ENDPOINTS = ("eod@146501_1", "podatki@146501_1", "eod@1421")
ENDPOINT_HEADER = "hub-endpoint"
DELAY_S = 1


@dataclass(frozen=True)
class Arrived:
    """One message read from a shard queue."""

    queue: str
    message_id: str
    endpoint: str
    body: bytes


@pytest.fixture
def topology(amqp_url: str) -> Iterator[Topology]:
    topology = Topology(f"migrateq-{uuid.uuid4().hex[:10]}", shards=2, delays_s=(DELAY_S,))
    yield topology
    with broker_channel(amqp_url) as channel:
        for endpoint in ENDPOINTS:
            channel.queue_delete(legacy_queue(topology, endpoint))
        channel.queue_delete(lock_queue(topology))
        topology.delete(channel)


@pytest.fixture
def settings(tmp_path: Path, amqp_url: str, topology: Topology) -> Settings:
    region = tmp_path / "region.toml"
    lines = [
        '[[offices]]\nid = "146501_1"\nname = "Urząd m.st. Warszawy"\n',
        '[[offices]]\nid = "1421"\nname = "Starostwo Powiatowe w Pruszkowie"\n',
    ]
    for endpoint in ENDPOINTS:
        lines.append(
            f'[[endpoints]]\nname = "{endpoint}"\nkind = "eod-rest"\nurl = "http://127.0.0.1:9"\n'
        )
    region.write_text("\n".join(lines), encoding="utf-8")
    settings = Settings(
        var_dir=tmp_path,
        amqp_url=amqp_url,
        queue_prefix=topology.prefix,
        region_path=region,
        delivery_shards=topology.shards,
        retry_delays_s=(DELAY_S,),
        hold_delays_s=(DELAY_S,),
    )
    assert settings.topology == topology
    return settings


@contextlib.contextmanager
def broker_channel(amqp_url: str) -> Iterator[BlockingChannel]:
    connection = connect(amqp_url)
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # so the test's own publishes are in place when they return
        yield channel
    finally:
        close_quietly(connection)


def declare_legacy_layout(channel: BlockingChannel, topology: Topology) -> None:
    """What earlier versions declared: a work queue per endpoint, the tier, the dead letters."""
    channel.exchange_declare(topology.exchange, exchange_type="direct", durable=True)
    for endpoint in ENDPOINTS:
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": topology.exchange,
            "x-dead-letter-routing-key": topology.dead_key,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        queue = legacy_queue(topology, endpoint)
        channel.queue_declare(queue, durable=True, arguments=arguments)
        channel.queue_bind(queue, topology.exchange, routing_key=legacy_key(endpoint))
    tier = topology.delay_exchange(DELAY_S)
    channel.exchange_declare(tier, exchange_type="fanout", durable=True)
    tier_arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-message-ttl": DELAY_S * 1000,
        "x-dead-letter-exchange": topology.exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    channel.queue_declare(topology.delay_queue(DELAY_S), durable=True, arguments=tier_arguments)
    channel.queue_bind(topology.delay_queue(DELAY_S), tier)
    channel.queue_declare(
        topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    channel.queue_bind(topology.dead_letter_queue, topology.exchange, routing_key=topology.dead_key)


def publish_legacy(
    channel: BlockingChannel,
    topology: Topology,
    endpoint: str,
    count: int,
    *,
    delayed: bool = False,
) -> dict[str, bytes]:
    """Publish ``count`` deliveries as earlier versions did; their ids and bodies."""
    exchange = topology.delay_exchange(DELAY_S) if delayed else topology.exchange
    published = {}
    for _ in range(count):
        message_id = str(uuid.uuid4())
        body = f"<pismo endpoint='{endpoint}' id='{message_id}'/>".encode()
        properties = pika.BasicProperties(
            message_id=message_id,
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/xml",
            headers={ENDPOINT_HEADER: endpoint, "hub-route": "pismo-ogolne-to-eod"},
        )
        channel.basic_publish(
            exchange, legacy_key(endpoint), body, properties=properties, mandatory=True
        )
        published[message_id] = body
    return published


def queue_exists(amqp_url: str, queue: str) -> bool:
    with broker_channel(amqp_url) as channel:
        try:
            channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                return False
            raise
        return True


def depth(amqp_url: str, queues: Sequence[str]) -> int:
    with broker_channel(amqp_url) as channel:
        return sum(
            channel.queue_declare(queue, passive=True).method.message_count for queue in queues
        )


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def take_every_shard(amqp_url: str, topology: Topology) -> list[Arrived]:
    """Every message in the shard queues, taken off them."""
    arrived = []
    with broker_channel(amqp_url) as channel:
        for queue in topology.delivery_queues:
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
                endpoint = str((properties.headers or {}).get(ENDPOINT_HEADER, ""))
                arrived.append(Arrived(queue, properties.message_id, endpoint, body))
    return arrived


def migrate(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(broker, ["migrate-queues", *args], obj=settings)


def assert_each_in_its_shard(
    arrived: Sequence[Arrived], topology: Topology, published: dict[str, bytes]
) -> Counter[str]:
    """Every published message arrived, in its endpoint's shard, unchanged; the copies per id."""
    copies = Counter(message.message_id for message in arrived)
    assert set(copies) == set(published)
    for message in arrived:
        assert message.queue == topology.delivery_queue(message.endpoint)
        assert message.body == published[message.message_id]
    return copies


def test_waiting_deliveries_move_once_each_to_their_shards_and_the_old_queues_go(
    settings: Settings, topology: Topology, amqp_url: str
) -> None:
    published: dict[str, bytes] = {}
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
        published |= publish_legacy(channel, topology, ENDPOINTS[0], 25)
        published |= publish_legacy(channel, topology, ENDPOINTS[1], 7)
        # ENDPOINTS[2]'s queue is empty; one of its deliveries waits in the delay tier.
        published |= publish_legacy(channel, topology, ENDPOINTS[2], 1, delayed=True)

    result = migrate(settings)

    assert result.exit_code == 0, result.output
    assert "queues 3/3 done" in result.stderr
    assert "bound 3 old routing key(s) of 3 endpoint(s)" in result.stdout
    assert "deleted 3" in result.stdout
    for endpoint in ENDPOINTS:
        assert not queue_exists(amqp_url, legacy_queue(topology, endpoint))
    # The delayed one comes back from its tier with its old key, into the old queue (if it
    # expired before the migration) or through the old key's new binding to the shard.
    wait_for(
        lambda: depth(amqp_url, topology.delivery_queues) == len(published),
        f"{len(published)} deliveries in the shards",
    )
    copies = assert_each_in_its_shard(take_every_shard(amqp_url, topology), topology, published)
    assert set(copies.values()) == {1}
    assert depth(amqp_url, [topology.dead_letter_queue]) == 0


def test_a_delivery_back_from_a_delay_tier_with_its_old_key_lands_in_its_shard(
    settings: Settings, topology: Topology, amqp_url: str
) -> None:
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
    assert migrate(settings).exit_code == 0

    # A delivery an old worker put in a tier before the upgrade, coming back after it.
    with broker_channel(amqp_url) as channel:
        published = publish_legacy(channel, topology, ENDPOINTS[1], 1, delayed=True)
        published |= publish_legacy(channel, topology, ENDPOINTS[0], 1, delayed=True)

    wait_for(
        lambda: depth(amqp_url, topology.delivery_queues) == 2, "the delayed deliveries to return"
    )
    copies = assert_each_in_its_shard(take_every_shard(amqp_url, topology), topology, published)
    assert set(copies.values()) == {1}
    # Run again: the bindings are already there, nothing else to do, nothing breaks.
    again = migrate(settings)
    assert again.exit_code == 0, again.output
    assert "moved 0 message(s) from 0 old queue(s)" in again.stdout


class SeveringPublisher(ConfirmingPublisher):
    """Closes the connection after the confirms of its ``sever_after``-th batch, before the acks.

    That is the worst moment for the migration to die: copies confirmed in the shard, the
    originals not yet acked in the old queue.
    """

    def __init__(self, connection: BlockingConnection, amqp_url: str, sever_after: int) -> None:
        super().__init__(connection, amqp_url)
        self._connection = connection
        self._sever_after = sever_after
        self.batches = 0

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        outcome = super().publish_batch(messages)
        self.batches += 1
        if self.batches == self._sever_after:
            self._connection.close()
        return outcome


def test_a_migration_cut_off_between_confirm_and_ack_loses_nothing_when_run_again(
    settings: Settings, topology: Topology, amqp_url: str
) -> None:
    published: dict[str, bytes] = {}
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
        for endpoint in ENDPOINTS:
            published |= publish_legacy(channel, topology, endpoint, 15)
    connection = connect(amqp_url)
    severing = SeveringPublisher(connection, amqp_url, sever_after=3)
    migration = QueueMigration(connection, amqp_url, topology, batch_size=10, publisher=severing)

    with pytest.raises(BrokerUnavailable):
        migration.run(ENDPOINTS)
    close_quietly(connection)

    again = migrate(settings)
    assert again.exit_code == 0, again.output
    for endpoint in ENDPOINTS:
        assert not queue_exists(amqp_url, legacy_queue(topology, endpoint))
    copies = assert_each_in_its_shard(take_every_shard(amqp_url, topology), topology, published)
    # Only the third batch (10 messages) was confirmed and never acked: those, and no
    # others, arrive twice, each copy with its message id and body.
    assert Counter(copies.values()) == Counter({1: len(published) - 10, 2: 10})


def test_a_migration_killed_as_a_process_loses_nothing_when_run_again(
    settings: Settings, topology: Topology, amqp_url: str, tmp_path: Path
) -> None:
    published: dict[str, bytes] = {}
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
        for endpoint in ENDPOINTS:
            published |= publish_legacy(channel, topology, endpoint, 300)
    environment = {
        "HUB_AMQP_URL": amqp_url,
        "HUB_QUEUE_PREFIX": topology.prefix,
        "HUB_REGION_PATH": str(settings.region_path),
        "HUB_DELIVERY_SHARDS": str(topology.shards),
        "HUB_RETRY_DELAYS_S": str(DELAY_S),
        "HUB_HOLD_DELAYS_S": str(DELAY_S),
        "HUB_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "hub", "broker", "migrate-queues"]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    # Killed (no clean-up at all) once it reports its first queue done, wherever it is then.
    first = process.stderr.readline()
    process.kill()
    process.wait(30)
    process.stderr.close()
    assert "queues 1/3 done" in first

    again = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )

    assert again.returncode == 0, again.stderr
    for endpoint in ENDPOINTS:
        assert not queue_exists(amqp_url, legacy_queue(topology, endpoint))
    copies = assert_each_in_its_shard(take_every_shard(amqp_url, topology), topology, published)
    assert max(copies.values()) <= 2


def test_a_dry_run_counts_the_old_queues_and_changes_nothing(
    settings: Settings, topology: Topology, amqp_url: str
) -> None:
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
        publish_legacy(channel, topology, ENDPOINTS[0], 4)
        publish_legacy(channel, topology, ENDPOINTS[2], 2)

    result = migrate(settings, "--dry-run", "--endpoint", "finanse@1421")

    assert result.exit_code == 0, result.output
    assert "would move 6 message(s) from 3 old queue(s) of 4 endpoint(s)" in result.stdout
    assert depth(amqp_url, [legacy_queue(topology, ENDPOINTS[0])]) == 4
    assert depth(amqp_url, [legacy_queue(topology, ENDPOINTS[2])]) == 2
    assert not queue_exists(amqp_url, topology.delivery_queue(ENDPOINTS[0]))


def test_an_old_queue_an_old_worker_still_consumes_is_left_with_what_it_holds(
    settings: Settings, topology: Topology, amqp_url: str
) -> None:
    published: dict[str, bytes] = {}
    with broker_channel(amqp_url) as channel:
        declare_legacy_layout(channel, topology)
        published |= publish_legacy(channel, topology, ENDPOINTS[0], 3)
    old_worker = connect(amqp_url)
    consuming = old_worker.channel()
    consuming.basic_qos(prefetch_count=1)
    held: list[int] = []
    consuming.basic_consume(
        legacy_queue(topology, ENDPOINTS[0]),
        lambda _channel, method, _properties, _body: held.append(method.delivery_tag),
    )
    wait_for(lambda: bool(old_worker.process_data_events(0.1) or held), "the old worker's delivery")

    result = migrate(settings)

    assert result.exit_code == 1
    assert legacy_queue(topology, ENDPOINTS[0]) in result.stderr
    assert queue_exists(amqp_url, legacy_queue(topology, ENDPOINTS[0]))
    # The old worker stops without acking: what it held goes back, and a re-run moves it.
    close_quietly(old_worker)
    again = migrate(settings)
    assert again.exit_code == 0, again.output
    copies = assert_each_in_its_shard(take_every_shard(amqp_url, topology), topology, published)
    assert set(copies.values()) == {1}


def test_a_second_migration_is_refused_while_one_runs(topology: Topology, amqp_url: str) -> None:
    running = connect(amqp_url)
    try:
        running.channel().queue_declare(lock_queue(topology), exclusive=True, auto_delete=True)
        second = connect(amqp_url)
        try:
            with pytest.raises(MigrationRunning):
                QueueMigration(second, amqp_url, topology).run(ENDPOINTS)
        finally:
            close_quietly(second)
    finally:
        close_quietly(running)
