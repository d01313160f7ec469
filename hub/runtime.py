"""Assembling the hub's long-running jobs from settings: worker, relay, poller."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from hub.broker.consumer import ConsumerLoop, IncomingMessage, Publisher
from hub.isolation import BurstMeter
from hub.poller import Poller
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
    settings: Settings,
    store: Store,
    roles: set[str],
    delivery: DeliveryWorker | None = None,
    threads: int | None = None,
) -> ConsumerLoop:
    """A consumer loop that routes accepted documents and/or delivers to endpoints.

    One connection consumes the accepted queue and the delivery shards (a constant
    number, whatever the region's size, so a worker consumes within a moment of its
    start) and hands messages to ``threads`` handler threads (``worker_threads``).
    ``delivery`` replaces the default delivery worker (tests hand in one whose adapters
    fail on purpose). Both follow the region file: a valid new version is taken between
    messages (setting ``region_reload_s``).
    """
    routers = RouterSource.of_file(
        settings.region_path, settings.region_reload_s, route_steps(settings)
    )
    regions = routers.regions
    topology = settings.topology
    bursts = BurstMeter(settings.burst_deliveries, settings.burst_window_s)
    routing = RoutingWorker(store, routers, topology, bursts)
    delivery = delivery or DeliveryWorker(store, regions.current(), settings, topology)
    if delivery.regions is None:
        delivery.regions = regions
    routing_queues = set(topology.accepted_queues)
    queues = list(topology.accepted_queues) if "route" in roles else []
    if "deliver" in roles:
        queues += topology.delivery_queues

    def handle(message: IncomingMessage, publisher: Publisher) -> None:
        if message.queue in routing_queues:
            routing.handle(message, publisher)
        else:
            delivery.handle(message, publisher)

    return ConsumerLoop(
        settings.amqp_url,
        queues,
        handle,
        prefetch=lambda queue: (
            settings.prefetch if queue in routing_queues else settings.delivery_prefetch
        ),
        on_connect=topology.declare,
        store_ready=store.reachable,
        backoff_max_s=settings.broker_backoff_max_s,
        concurrency=threads or settings.worker_threads,
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


def run_worker(settings: Settings, store: Store, roles: set[str], threads: int) -> None:
    """Run one consumer loop with ``threads`` handler threads in this process until SIGTERM.

    Most of a delivery is spent waiting (on the destination, the database, the broker's
    confirm), so several handler threads overlap those waits; a slow endpoint holds at
    most ``endpoint_concurrency`` of them.
    """
    loop = build_worker(settings, store, roles, threads=threads)
    stop_on_signals(loop.stop_requested)
    loop.run()


def build_relay(settings: Settings, store: Store) -> OutboxRelay:
    """The outbox relay (it declares the whole topology: a constant set of queues)."""
    return OutboxRelay(store, settings, settings.topology, worker_name())


def build_poller(settings: Settings, store: Store) -> Poller:
    """The poller over every inbound channel of the region, following the region file."""
    return Poller(
        store, RegionSource(settings.region_path, settings.region_reload_s), settings, worker_name()
    )
