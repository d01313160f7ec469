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
from hub.reload import RegionSource, RouterSource
from hub.routing import BUILTIN_STEPS, Step
from hub.settings import Settings
from hub.signing.keystore import Keystore
from hub.signing.steps import seal_for_delivery, sign_with_office, verify_signature
from hub.signing.trust import TrustLists
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
    fail on purpose). Both follow the region file: a valid new version is taken between
    messages (setting ``region_reload_s``), with queues for its new endpoints declared
    before anything is routed to them and consumed by the delivering loops.
    """
    routers = RouterSource.of_file(
        settings.region_path, settings.region_reload_s, route_steps(settings)
    )
    regions = routers.regions
    topology = Topology(settings.queue_prefix)
    routing = RoutingWorker(store, routers, topology)
    delivery = delivery or DeliveryWorker(store, regions.current(), settings, topology)
    if delivery.regions is None:
        delivery.regions = regions

    def queues() -> list[str]:
        wanted = [topology.accepted_queue] if "route" in roles else []
        if "deliver" in roles:
            wanted += [
                topology.delivery_queue(endpoint) for endpoint in regions.current().endpoints
            ]
        return wanted

    def handle(message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
        if message.queue == topology.accepted_queue:
            routing.handle(message, publisher)
        else:
            delivery.handle(message, publisher)

    return ConsumerLoop(
        settings.amqp_url,
        queues(),
        handle,
        prefetch=lambda queue: (
            settings.prefetch if queue == topology.accepted_queue else settings.delivery_prefetch
        ),
        on_connect=declare_topology(settings, regions.current),
        store_ready=store.reachable,
        backoff_max_s=settings.broker_backoff_max_s,
        more_queues=queues if "deliver" in roles else None,
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
    # Citizens' signatures are checked against the citizens' lists only: an office's
    # certificate is no citizen's signature unless the offices' CA is listed there too.
    trust = TrustLists.on_first_use(settings.trust)
    checks = {"profil_zaufany": trust.profil_zaufany}
    steps["verify_signature"] = verify_signature(trust.signatures, required=False, **checks)
    steps["require_valid_signature"] = verify_signature(trust.signatures, required=True, **checks)
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


def declare_topology(
    settings: Settings, region: Region | Callable[[], Region]
) -> Callable[[BlockingChannel], None]:
    """A callback that declares the region's topology (the current one, if given a getter)."""
    topology = Topology(settings.queue_prefix)

    def declare(channel: BlockingChannel) -> None:
        current = region() if callable(region) else region
        topology.declare(channel, list(current.endpoints), settings.retry_delays_s)

    return declare


def build_relay(settings: Settings, store: Store) -> tuple[OutboxRelay, list[str]]:
    """The outbox relay and the endpoints whose queues it declares."""
    region = load_region(settings.region_path)
    relay = OutboxRelay(store, settings, Topology(settings.queue_prefix), worker_name())
    return relay, list(region.endpoints)


def build_poller(settings: Settings, store: Store) -> Poller:
    """The poller over every inbound channel of the region, following the region file."""
    return Poller(
        store, RegionSource(settings.region_path, settings.region_reload_s), settings, worker_name()
    )
