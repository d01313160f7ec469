"""Assembling the hub's long-running jobs from settings: worker, relay, poller."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from pika.adapters.blocking_connection import BlockingChannel

from hub.broker.consumer import ConsumerLoop, IncomingMessage
from hub.broker.publisher import ConfirmingPublisher
from hub.broker.topology import Topology
from hub.poller import Poller
from hub.region import Region, load_region
from hub.relay import OutboxRelay
from hub.routing import BUILTIN_STEPS, Router, Step
from hub.settings import Settings
from hub.signing.keystore import Keystore
from hub.signing.steps import seal_for_delivery, sign_with_office, verify_signature
from hub.signing.trust import TrustStore
from hub.store.repository import Store
from hub.translate import mapping_steps
from hub.workers import DeliveryWorker, RoutingWorker, worker_name


def stop_on_signals(*events: threading.Event) -> None:
    """Set ``events`` on SIGTERM or SIGINT, so jobs finish their current unit and exit."""

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        for event in events:
            event.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def build_worker(
    settings: Settings, store: Store, roles: set[str], delivery: DeliveryWorker | None = None
) -> ConsumerLoop:
    """A consumer loop that routes accepted documents and/or delivers to endpoints.

    ``delivery`` replaces the default delivery worker (tests hand in one whose adapters
    fail on purpose).
    """
    region = load_region(settings.region_path)
    topology = Topology(settings.queue_prefix)
    routing = RoutingWorker(store, Router(region, route_steps(settings)), topology)
    delivery = delivery or DeliveryWorker(store, region, settings, topology)
    queues: list[str] = []
    if "route" in roles:
        queues.append(topology.accepted_queue)
    if "deliver" in roles:
        queues += [topology.delivery_queue(endpoint) for endpoint in region.endpoints]

    def handle(message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
        if message.queue == topology.accepted_queue:
            routing.handle(message, publisher)
        else:
            delivery.handle(message, publisher)

    return ConsumerLoop(
        settings.amqp_url,
        queues,
        handle,
        prefetch=settings.prefetch,
        on_connect=declare_topology(settings, region),
        backoff_max_s=settings.broker_backoff_max_s,
    )


def route_steps(settings: Settings) -> dict[str, Step]:
    """Every step a route may name, the signing ones bound to this hub's keystore."""
    keystore = Keystore(settings.keys, settings.keystore_password)
    steps = {
        **BUILTIN_STEPS,
        **mapping_steps(),
        "sign_with_office": sign_with_office(keystore),
        "seal_for_delivery": seal_for_delivery(keystore),
    }
    trust = TrustStore.on_first_use(settings.trust)
    steps["verify_signature"] = verify_signature(trust, required=False)
    steps["require_valid_signature"] = verify_signature(trust, required=True)
    return steps


def run_worker_threads(settings: Settings, store: Store, roles: set[str], threads: int) -> None:
    """Run ``threads`` consumer loops in this process until SIGTERM.

    Each loop has its own connection and channel (pika is not thread-safe). Most of a
    delivery is spent waiting (on the destination, the database, the broker's confirm),
    so several consumers per process overlap those waits; a slow endpoint then holds
    one consumer, not the whole worker.
    """
    loops = [build_worker(settings, store, roles) for _ in range(threads)]
    stop_on_signals(*(loop.stop_requested for loop in loops))
    runners = [
        threading.Thread(target=loop.run, name=f"consumer-{n}") for n, loop in enumerate(loops)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()


def declare_topology(settings: Settings, region: Region) -> Callable[[BlockingChannel], None]:
    """A callback that declares the region's topology on a fresh channel."""
    topology = Topology(settings.queue_prefix)

    def declare(channel: BlockingChannel) -> None:
        topology.declare(channel, list(region.endpoints), settings.retry_delays_s)

    return declare


def build_relay(settings: Settings, store: Store) -> tuple[OutboxRelay, list[str]]:
    """The outbox relay and the endpoints whose queues it declares."""
    region = load_region(settings.region_path)
    relay = OutboxRelay(store, settings, Topology(settings.queue_prefix), worker_name())
    return relay, list(region.endpoints)


def build_poller(settings: Settings, store: Store) -> Poller:
    """The poller over every inbound channel of the region."""
    return Poller(store, load_region(settings.region_path), settings, worker_name())
