"""The two consumers of the hub: the router (``accepted``) and the deliverer (``deliver.*``).

Both follow one rule: write the outcome to the store, publish what follows with
confirms, and only then let the consumer loop ack. A redelivered message finds its
own earlier work in the store and does not repeat an effect.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pika
import structlog

from hub.adapters import OutboundAdapter, outbound_adapter
from hub.breaker import CircuitBreakers, Gate
from hub.broker.codec import from_amqp, header, to_amqp
from hub.broker.consumer import IncomingMessage, Publisher
from hub.broker.topology import Topology
from hub.envelope import Envelope
from hub.errors import (
    DeliveryError,
    MappingError,
    PermanentDeliveryError,
    RejectedInput,
    TransientDeliveryError,
)
from hub.isolation import HELD_HEADER, BurstMeter, EndpointSlots, HoldPolicy, times_held
from hub.logging import get_logger
from hub.region import EndpointConfig, Region
from hub.reload import RegionSource, RouterSource
from hub.retry import RetryPolicy
from hub.routing import RouteDecision, Router
from hub.settings import Settings
from hub.signing.steps import SIGNATURE_CHECKS
from hub.states import DeliveryStatus
from hub.store.repository import (
    DEADLINE_HEADER,
    AwaitedReceipt,
    Claim,
    ClaimResult,
    PlannedDelivery,
    SignatureCheck,
    Store,
)

log = get_logger(__name__)

ENDPOINT_HEADER = "hub-endpoint"
# A delivery whose endpoint has all its slots in use waits this long for one in its
# thread (a fast system frees one within milliseconds) before it is held in a delay tier;
# a busy endpoint's holds stay short (a slot frees as soon as one answer comes back).
SLOT_WAIT_S = 0.5
BUSY_HOLD_MAX_S = 30
REASON_HEADER = "hub-dead-reason"


def worker_name() -> str:
    """This process's name in attempt rows: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def publish_dead(
    publisher: Publisher,
    topology: Topology,
    message: IncomingMessage,
    reason: str,
) -> None:
    """Park ``message`` in the dead-letter queue with the reason in a header."""
    headers = dict(message.properties.headers or {})
    headers[REASON_HEADER] = reason[:1000]
    headers["hub-dead-from"] = message.queue
    properties = pika.BasicProperties(
        message_id=message.properties.message_id,
        correlation_id=message.properties.correlation_id,
        content_type=message.properties.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=headers,
    )
    publisher.publish(topology.exchange, topology.dead_key, properties, message.body)


def envelope_or_park(
    message: IncomingMessage, publisher: Publisher, topology: Topology
) -> Envelope | None:
    """The envelope a message carries, or None after parking a message that carries none."""
    try:
        return from_amqp(message.properties, message.body)
    except (KeyError, ValueError) as exc:
        publish_dead(publisher, topology, message, f"not a hub envelope: {exc!r}")
        return None


def signature_checks_of(envelopes: Iterable[Envelope]) -> list[SignatureCheck]:
    """What a ``verify_signature`` step found, from the first envelope that carries it."""
    for envelope in envelopes:
        if SIGNATURE_CHECKS in envelope.headers:
            return [
                _signature_check(record)
                for record in json.loads(envelope.headers[SIGNATURE_CHECKS])
            ]
    return []


def case_deadline_days(router: Router, envelope: Envelope) -> int | None:
    """The statutory days of the service ``envelope`` is filed under, unless its sender
    named the deadline itself (then the case opened with that one and keeps it)."""
    if DEADLINE_HEADER in envelope.headers:
        return None
    service = router.service(envelope)
    return service.deadline_days if service is not None else None


def _signature_check(record: dict[str, Any]) -> SignatureCheck:
    signed_at = record.get("signed_at")
    return SignatureCheck(
        valid=bool(record["valid"]),
        method=str(record.get("method") or "xades"),
        signer=record.get("signer"),
        signed_at=datetime.fromisoformat(signed_at) if signed_at else None,
        certificate_serial=record.get("certificate_serial"),
        reason=record.get("reason"),
        position=int(record.get("position", 1)),
        form=str(record.get("form") or "enveloped"),
        covers_document=bool(record.get("covers_document", True)),
    )


class RoutingWorker:
    """Routes accepted documents: decide destinations, store deliveries, publish them.

    Given a :class:`RouterSource`, it takes a reloaded region between two documents; a new
    endpoint needs no queue of its own (its deliveries go to the shard its name hashes
    to). A :class:`BurstMeter` shared by the process's threads picks each delivery's lane.
    """

    def __init__(
        self,
        store: Store,
        router: Router | RouterSource,
        topology: Topology,
        bursts: BurstMeter | None = None,
    ) -> None:
        self._store = store
        self._routers = router if isinstance(router, RouterSource) else None
        self._router = router.current() if isinstance(router, RouterSource) else router
        self._topology = topology
        self._bursts = bursts or BurstMeter(burst=0, window_s=1.0)

    def _current_router(self) -> Router:
        if self._routers is not None:
            self._router = self._routers.current()
        return self._router

    def handle(self, message: IncomingMessage, publisher: Publisher) -> None:
        """Route one accepted document (idempotent by envelope id)."""
        envelope = envelope_or_park(message, publisher, self._topology)
        if envelope is None:
            return
        with structlog.contextvars.bound_contextvars(
            envelope_id=str(envelope.envelope_id), correlation_id=envelope.correlation_id
        ):
            self._route(envelope, message, publisher)

    def _route(self, envelope: Envelope, message: IncomingMessage, publisher: Publisher) -> None:
        message_id = str(envelope.envelope_id)
        router = self._current_router()
        try:
            decisions = router.decide(envelope)
            outgoing = {
                decision.endpoint: (decision, decision.apply(envelope)) for decision in decisions
            }
        except (RejectedInput, MappingError) as exc:
            if not self._store.reject_message(message_id, f"{exc.code}: {exc.reason}"):
                publish_dead(publisher, self._topology, message, "the store has no such message")
                return
            log.info("document_rejected", code=exc.code, reason=exc.reason)
            return
        tickets = self._store.record_routing(
            message_id,
            [PlannedDelivery(d.endpoint, d.route) for d, _ in outgoing.values()],
            signature_checks_of(routed for _, routed in outgoing.values()),
            case_deadline_days(router, envelope),
        )
        if tickets is None:
            publish_dead(publisher, self._topology, message, "the store has no such message")
            return
        for ticket in tickets:
            # Only pending deliveries need a message; the others are in flight or done.
            if ticket.status is DeliveryStatus.PENDING and ticket.endpoint in outgoing:
                decision, routed = outgoing[ticket.endpoint]
                self._publish_delivery(publisher, decision, routed, ticket.delivery_id)
        log.info("document_routed", endpoints=sorted(outgoing))

    def _publish_delivery(
        self,
        publisher: Publisher,
        decision: RouteDecision,
        envelope: Envelope,
        delivery_id: str,
    ) -> None:
        properties, body = to_amqp(
            envelope, delivery_id, {ENDPOINT_HEADER: decision.endpoint, "hub-route": decision.route}
        )
        lane = self._bursts.lane_of(decision.endpoint)
        publisher.publish(
            self._topology.exchange,
            self._topology.delivery_key(decision.endpoint, lane),
            properties,
            body,
        )


@dataclass
class Delivery:
    """One delivery message as the chain hands it along, read once at the door."""

    endpoint: str
    envelope: Envelope
    message: IncomingMessage
    publisher: Publisher
    gate: Gate = field(default_factory=lambda: Gate(True))
    claim: Claim | None = None

    @property
    def delivery_id(self) -> str:
        """The delivery's id (the message id it travels under)."""
        return self.message.message_id


Proceed = Callable[[Delivery], None]


class Middleware(Protocol):
    """One link of the delivery chain: act, then call ``proceed`` (or do not)."""

    def __call__(self, delivery: Delivery, proceed: Proceed) -> None:
        """Handle ``delivery``, passing it on with ``proceed`` if it may go further."""


@dataclass
class DeliveryWorker:
    """Delivers to endpoints through their adapters, recording every attempt.

    A delivery passes a short chain (:meth:`chain`): its log context, the endpoint's
    circuit, a slot among the endpoint's in-flight deliveries in this process, the claim
    in the store, and last the attempt itself. A link that cannot let it go on now holds
    it in a delay tier (no attempt used) or parks it. One worker serves every handler
    thread of its process: each thread builds adapters of its own.
    """

    store: Store
    region: Region
    settings: Settings
    topology: Topology
    adapters: dict[str, OutboundAdapter] = field(default_factory=dict)
    name: str = field(default_factory=worker_name)
    # Where a reloaded region comes from (None: ``region`` stays as given).
    regions: RegionSource | None = None
    slots: EndpointSlots | None = None
    breakers: CircuitBreakers = field(init=False)
    _holds: HoldPolicy = field(init=False)
    _local: threading.local = field(init=False, default_factory=threading.local)
    _built: list[OutboundAdapter] = field(init=False, default_factory=list)
    _built_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.breakers = CircuitBreakers(self.store, self.settings)
        self.slots = self.slots or EndpointSlots(self.settings.endpoint_concurrency)
        self._holds = HoldPolicy(self.settings.delay_tiers_s, self.settings.hold_max_s)

    def current_region(self) -> Region:
        """The region now: the reloaded one if this worker follows a region file."""
        if self.regions is not None:
            self.region = self.regions.current()
        return self.region

    def handle(self, message: IncomingMessage, publisher: Publisher) -> None:
        """Make one attempt at one delivery (idempotent by delivery id)."""
        envelope = envelope_or_park(message, publisher, self.topology)
        if envelope is None:
            return
        endpoint = header(message.properties, ENDPOINT_HEADER) or ""
        self._run_chain(Delivery(endpoint, envelope, message, publisher))

    def chain(self) -> list[Middleware]:
        """The links every delivery passes before its attempt, in order."""
        return [self._log_context, self._circuit_gate, self._endpoint_slot, self._claim]

    def stop(self) -> None:
        """Stop every adapter this worker opened, on any thread."""
        with self._built_lock:
            built, self._built = self._built, []
        for adapter in [*self.adapters.values(), *built]:
            adapter.stop()

    def _run_chain(self, delivery: Delivery) -> None:
        links = self.chain()

        def step(index: int) -> Proceed:
            if index == len(links):
                return self._attempt
            return lambda passed: links[index](passed, step(index + 1))

        step(0)(delivery)

    def _log_context(self, delivery: Delivery, proceed: Proceed) -> None:
        with structlog.contextvars.bound_contextvars(
            envelope_id=str(delivery.envelope.envelope_id),
            correlation_id=delivery.envelope.correlation_id,
            endpoint=delivery.endpoint,
            delivery_id=delivery.delivery_id,
        ):
            proceed(delivery)

    def _circuit_gate(self, delivery: Delivery, proceed: Proceed) -> None:
        gate = self.breakers.gate(delivery.endpoint)
        if not gate.allowed:
            # The endpoint's circuit is open or paused: wait without using an attempt.
            delay_s = self._hold(delivery, at_least_s=gate.wait_s)
            log.info("delivery_held_by_circuit", circuit=gate.circuit.value, retry_in_s=delay_s)
            return
        delivery.gate = gate
        proceed(delivery)

    def _endpoint_slot(self, delivery: Delivery, proceed: Proceed) -> None:
        assert self.slots is not None
        if not self.slots.try_take(delivery.endpoint, SLOT_WAIT_S):
            delay_s = self._hold(delivery, cap_s=BUSY_HOLD_MAX_S)
            log.info("delivery_held_endpoint_busy", retry_in_s=delay_s)
            return
        try:
            proceed(delivery)
        finally:
            self.slots.give_back(delivery.endpoint)

    def _claim(self, delivery: Delivery, proceed: Proceed) -> None:
        claim = self.store.claim_delivery(
            delivery.delivery_id,
            f"{self.name}/{threading.current_thread().name}",
            self.settings.delivery_lease_s,
        )
        if claim.result is ClaimResult.CLAIMED:
            delivery.claim = claim
            with structlog.contextvars.bound_contextvars(attempt=claim.attempt_number):
                proceed(delivery)
        elif claim.result is ClaimResult.ALREADY_FINAL:
            log.info("duplicate_delivery_skipped")
        elif claim.result is ClaimResult.UNKNOWN:
            publish_dead(
                delivery.publisher,
                self.topology,
                delivery.message,
                "the store has no such delivery",
            )
        else:
            # Another worker holds the lease (or died holding it): look again once it ends.
            delay_s = self._hold(delivery, at_least_s=claim.lease_left_s)
            log.info("delivery_held_elsewhere", retry_in_s=delay_s)

    def _attempt(self, delivery: Delivery) -> None:
        claim = delivery.claim
        assert claim is not None
        started = time.perf_counter()
        try:
            receipt = self._adapter(delivery.endpoint).deliver(delivery.envelope)
        except DeliveryError as exc:
            if isinstance(exc, TransientDeliveryError):
                self.breakers.failed(delivery.endpoint, exc.reason)
            self._failed(exc, delivery, claim, started)
            return
        self.breakers.succeeded(delivery.endpoint, delivery.gate)
        self.store.complete_delivery(
            delivery.delivery_id,
            claim,
            receipt.external_reference,
            receipt.evidence,
            self._awaited(receipt.awaits),
        )
        log.info(
            "delivery_finished",
            outcome="delivered",
            attempts=claim.attempt_number,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            reference=receipt.external_reference,
        )

    def _policy_of(self, endpoint: str) -> RetryPolicy:
        """The retry tiers and caps from the settings, with the endpoint's own maximum age."""
        config = self.current_region().endpoints.get(endpoint)
        max_age_s = config.max_age_s if config and config.max_age_s else self.settings.max_age_s
        return RetryPolicy(self.settings.retry_delays_s, self.settings.max_attempts, max_age_s)

    def _failed(
        self, error: DeliveryError, delivery: Delivery, claim: Claim, started: float
    ) -> None:
        permanent = isinstance(error, PermanentDeliveryError) or not isinstance(
            error, TransientDeliveryError
        )
        policy = self._policy_of(delivery.endpoint)
        give_up = permanent or policy.gives_up_after(claim.attempt_number, claim.age_s)
        retry_after_s = error.retry_after_s if isinstance(error, TransientDeliveryError) else None
        delay_s = policy.delay_after(claim.attempt_number, retry_after_s)
        next_attempt_at = None if give_up else datetime.now(UTC) + timedelta(seconds=delay_s)
        self.store.fail_delivery(
            delivery.delivery_id, claim, error, give_up=give_up, next_attempt_at=next_attempt_at
        )
        if give_up:
            publish_dead(
                delivery.publisher, self.topology, delivery.message, f"{error.code}: {error.reason}"
            )
        else:
            self._publish_delayed(delivery, delay_s, delivery.message.properties)
        log.warning(
            "delivery_finished",
            outcome="dead" if give_up else "retrying",
            attempts=claim.attempt_number,
            error_class=type(error).__name__,
            error=error.reason,
            retry_in_s=None if give_up else delay_s,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _hold(self, delivery: Delivery, at_least_s: float = 0.0, cap_s: int | None = None) -> int:
        """Put ``delivery`` back in a delay tier without an attempt; return the tier."""
        properties = delivery.message.properties
        held = times_held(properties.headers)
        delay_s = self._holds.delay(held, at_least_s, cap_s)
        headers = {**(properties.headers or {}), HELD_HEADER: held + 1}
        self._publish_delayed(delivery, delay_s, _with_headers(properties, headers))
        return delay_s

    def _publish_delayed(
        self, delivery: Delivery, delay_s: int, properties: pika.BasicProperties
    ) -> None:
        # The delay queue dead-letters the message back with its own routing key, so it
        # returns to the shard and lane it came from.
        delivery.publisher.publish(
            self.topology.delay_exchange(delay_s),
            delivery.message.routing_key or self.topology.delivery_key(delivery.endpoint),
            properties,
            delivery.message.body,
        )

    def _awaited(self, kind: str | None) -> AwaitedReceipt | None:
        if kind is None:
            return None
        deadline = timedelta(seconds=self.settings.receipt_deadline_s)
        return AwaitedReceipt(kind, datetime.now(UTC) + deadline)

    def _adapter(self, endpoint: str) -> OutboundAdapter:
        if endpoint in self.adapters:
            return self.adapters[endpoint]  # handed in (tests): shared by every thread
        config = self.current_region().endpoints.get(endpoint)
        if config is None:
            raise PermanentDeliveryError(f"endpoint {endpoint!r} is not configured")
        mine: dict[str, tuple[EndpointConfig, OutboundAdapter]] = self._local.__dict__.setdefault(
            "adapters", {}
        )
        built = mine.get(endpoint)
        if built is not None and built[0] == config:
            return built[1]
        if built is not None:
            # The region changed this endpoint (a new URL): the old adapter goes.
            built[1].stop()
        adapter = outbound_adapter(config, self.settings)
        mine[endpoint] = (config, adapter)
        with self._built_lock:
            self._built.append(adapter)
        return adapter


def _with_headers(
    properties: pika.BasicProperties, headers: dict[str, Any]
) -> pika.BasicProperties:
    return pika.BasicProperties(
        message_id=properties.message_id,
        correlation_id=properties.correlation_id,
        content_type=properties.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        timestamp=properties.timestamp,
        type=properties.type,
        headers=headers,
    )
