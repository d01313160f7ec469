"""The two consumers of the hub: the router (``accepted``) and the deliverer (``deliver.*``).

Both follow one rule: write the outcome to the store, publish what follows with
confirms, and only then let the consumer loop ack. A redelivered message finds its
own earlier work in the store and does not repeat an effect.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import structlog

from hub.adapters import OutboundAdapter, outbound_adapter
from hub.breaker import CircuitBreakers
from hub.broker.codec import from_amqp, header, to_amqp
from hub.broker.consumer import IncomingMessage
from hub.broker.publisher import ConfirmingPublisher
from hub.broker.topology import Topology
from hub.envelope import Envelope
from hub.errors import (
    DeliveryError,
    MappingError,
    PermanentDeliveryError,
    RejectedInput,
    TransientDeliveryError,
)
from hub.logging import get_logger
from hub.region import EndpointConfig, Region
from hub.reload import RegionSource, RouterSource
from hub.retry import RetryPolicy, shortest_tier_at_least
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
REASON_HEADER = "hub-dead-reason"


def worker_name() -> str:
    """This process's name in attempt rows: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def publish_dead(
    publisher: ConfirmingPublisher,
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
    message: IncomingMessage, publisher: ConfirmingPublisher, topology: Topology
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

    Given a :class:`RouterSource`, it takes a reloaded region between two documents,
    first declaring the delivery queues of the new region's endpoints, so nothing is
    published to a queue that does not exist yet.
    """

    def __init__(self, store: Store, router: Router | RouterSource, topology: Topology) -> None:
        self._store = store
        self._routers = router if isinstance(router, RouterSource) else None
        self._router = router.current() if isinstance(router, RouterSource) else router
        self._topology = topology
        self._declared = set(self._router.endpoints())

    def _current_router(self, publisher: ConfirmingPublisher) -> Router:
        if self._routers is None:
            return self._router
        router = self._routers.current()
        if router is not self._router:
            new = sorted(set(router.endpoints()) - self._declared)
            if new:
                publisher.declare(lambda channel: self._topology.declare(channel, new, ()))
                self._declared.update(new)
                log.info("region_endpoints_declared", endpoints=new)
            self._router = router
        return self._router

    def handle(self, message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
        """Route one accepted document (idempotent by envelope id)."""
        envelope = envelope_or_park(message, publisher, self._topology)
        if envelope is None:
            return
        with structlog.contextvars.bound_contextvars(
            envelope_id=str(envelope.envelope_id), correlation_id=envelope.correlation_id
        ):
            self._route(envelope, message, publisher)

    def _route(
        self, envelope: Envelope, message: IncomingMessage, publisher: ConfirmingPublisher
    ) -> None:
        message_id = str(envelope.envelope_id)
        router = self._current_router(publisher)
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
        publisher: ConfirmingPublisher,
        decision: RouteDecision,
        envelope: Envelope,
        delivery_id: str,
    ) -> None:
        properties, body = to_amqp(
            envelope, delivery_id, {ENDPOINT_HEADER: decision.endpoint, "hub-route": decision.route}
        )
        publisher.publish(
            self._topology.exchange,
            self._topology.delivery_key(decision.endpoint),
            properties,
            body,
        )


@dataclass
class DeliveryWorker:
    """Delivers to endpoints through their adapters, recording every attempt."""

    store: Store
    region: Region
    settings: Settings
    topology: Topology
    adapters: dict[str, OutboundAdapter] = field(default_factory=dict)
    name: str = field(default_factory=worker_name)
    # Where a reloaded region comes from (None: ``region`` stays as given).
    regions: RegionSource | None = None
    breakers: CircuitBreakers = field(init=False)
    # The configuration each adapter this worker built was built from.
    _built_from: dict[str, EndpointConfig] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.breakers = CircuitBreakers(self.store, self.settings)

    def current_region(self) -> Region:
        """The region now: the reloaded one if this worker follows a region file."""
        if self.regions is not None:
            self.region = self.regions.current()
        return self.region

    def _policy_of(self, endpoint: str) -> RetryPolicy:
        """The retry tiers and caps from the settings, with the endpoint's own maximum age."""
        config = self.current_region().endpoints.get(endpoint)
        max_age_s = config.max_age_s if config and config.max_age_s else self.settings.max_age_s
        return RetryPolicy(self.settings.retry_delays_s, self.settings.max_attempts, max_age_s)

    def handle(self, message: IncomingMessage, publisher: ConfirmingPublisher) -> None:
        """Make one attempt at one delivery (idempotent by delivery id)."""
        endpoint = header(message.properties, ENDPOINT_HEADER) or ""
        envelope = envelope_or_park(message, publisher, self.topology)
        if envelope is None:
            return
        with structlog.contextvars.bound_contextvars(
            envelope_id=str(envelope.envelope_id),
            correlation_id=envelope.correlation_id,
            endpoint=endpoint,
            delivery_id=message.message_id,
        ):
            self._attempt(endpoint, envelope, message, publisher)

    def stop(self) -> None:
        """Stop every adapter this worker opened."""
        for adapter in self.adapters.values():
            adapter.stop()

    def _attempt(
        self,
        endpoint: str,
        envelope: Envelope,
        message: IncomingMessage,
        publisher: ConfirmingPublisher,
    ) -> None:
        gate = self.breakers.gate(endpoint)
        if not gate.allowed:
            # The endpoint's circuit is open or paused: wait without using an attempt.
            delay_s = shortest_tier_at_least(self.settings.retry_delays_s, gate.wait_s)
            self._publish_delayed(publisher, message, delay_s)
            log.info("delivery_held_by_circuit", circuit=gate.circuit.value, retry_in_s=delay_s)
            return
        claim = self.store.claim_delivery(
            message.message_id, self.name, self.settings.delivery_lease_s
        )
        if claim.result is not ClaimResult.CLAIMED:
            self._not_claimed(claim, message, publisher)
            return
        with structlog.contextvars.bound_contextvars(attempt=claim.attempt_number):
            started = time.perf_counter()
            try:
                receipt = self._adapter(endpoint).deliver(envelope)
            except DeliveryError as exc:
                if isinstance(exc, TransientDeliveryError):
                    self.breakers.failed(endpoint, exc.reason)
                self._failed(exc, claim, message, publisher, started)
                return
            self.breakers.succeeded(endpoint, gate)
            self.store.complete_delivery(
                message.message_id,
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

    def _not_claimed(
        self, claim: Claim, message: IncomingMessage, publisher: ConfirmingPublisher
    ) -> None:
        if claim.result is ClaimResult.ALREADY_FINAL:
            log.info("duplicate_delivery_skipped")
        elif claim.result is ClaimResult.UNKNOWN:
            publish_dead(publisher, self.topology, message, "the store has no such delivery")
        else:
            # Another worker holds the lease (or died holding it): look again once it ends.
            delay_s = shortest_tier_at_least(self.settings.retry_delays_s, claim.lease_left_s)
            self._publish_delayed(publisher, message, delay_s)
            log.info("delivery_held_elsewhere", retry_in_s=delay_s)

    def _failed(
        self,
        error: DeliveryError,
        claim: Claim,
        message: IncomingMessage,
        publisher: ConfirmingPublisher,
        started: float,
    ) -> None:
        permanent = isinstance(error, PermanentDeliveryError) or not isinstance(
            error, TransientDeliveryError
        )
        policy = self._policy_of(header(message.properties, ENDPOINT_HEADER) or "")
        give_up = permanent or policy.gives_up_after(claim.attempt_number, claim.age_s)
        retry_after_s = error.retry_after_s if isinstance(error, TransientDeliveryError) else None
        delay_s = policy.delay_after(claim.attempt_number, retry_after_s)
        next_attempt_at = None if give_up else datetime.now(UTC) + timedelta(seconds=delay_s)
        self.store.fail_delivery(
            message.message_id, claim, error, give_up=give_up, next_attempt_at=next_attempt_at
        )
        if give_up:
            publish_dead(publisher, self.topology, message, f"{error.code}: {error.reason}")
        else:
            self._publish_delayed(publisher, message, delay_s)
        log.warning(
            "delivery_finished",
            outcome="dead" if give_up else "retrying",
            attempts=claim.attempt_number,
            error_class=type(error).__name__,
            error=error.reason,
            retry_in_s=None if give_up else delay_s,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _publish_delayed(
        self, publisher: ConfirmingPublisher, message: IncomingMessage, delay_s: int
    ) -> None:
        # The delay queue dead-letters the message back with its own routing key.
        endpoint = header(message.properties, ENDPOINT_HEADER) or ""
        properties = message.properties
        publisher.publish(
            self.topology.delay_exchange(delay_s),
            self.topology.delivery_key(endpoint),
            properties,
            message.body,
        )

    def _awaited(self, kind: str | None) -> AwaitedReceipt | None:
        if kind is None:
            return None
        deadline = timedelta(seconds=self.settings.receipt_deadline_s)
        return AwaitedReceipt(kind, datetime.now(UTC) + deadline)

    def _adapter(self, endpoint: str) -> OutboundAdapter:
        config = self.current_region().endpoints.get(endpoint)
        built_from = self._built_from.get(endpoint)
        if endpoint in self.adapters and (built_from is None or built_from == config):
            return self.adapters[endpoint]
        if config is None:
            raise PermanentDeliveryError(f"endpoint {endpoint!r} is not configured")
        if endpoint in self.adapters:
            # The region changed this endpoint (a new URL): the old adapter goes.
            self.adapters.pop(endpoint).stop()
        self.adapters[endpoint] = outbound_adapter(config, self.settings)
        self._built_from[endpoint] = config
        return self.adapters[endpoint]
