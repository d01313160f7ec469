"""The AMQP interface of a register system: its queues, the hub's headers, its answers.

Pure: names and mappings only, no connection. See ``README.md`` beside this module for
the table of headers and the answer format a register system must follow.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika

from hub.envelope import Envelope
from hub.region import EndpointConfig

DEFAULT_QUEUE_IN = "legacy.{system}.{office}.in"
DEFAULT_QUEUE_OUT = "legacy.{system}.{office}.out"
# Templates without {office}: one interface shared by every office of the system (a
# regional portal's module serving them all); the documents carry their office.
SHARED_QUEUE_IN = "legacy.{system}.in"
SHARED_QUEUE_OUT = "legacy.{system}.out"
OFFICE_FIELD = "{office}"
PARKED_SUFFIX = ".parked"
# Both sides declare the interface queues with these arguments (declaring is idempotent
# only when the arguments agree): durable quorum queues, replicated like the hub's own.
QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
# Each answers queue has an exchange of its own, bound to it alone (see answers_exchange).
ANSWERS_EXCHANGE_TYPE = "fanout"

# Receipt kinds the answers are kept under; the delivery awaits the acknowledgement.
ACK_KIND = "register-ack"
REFUSAL_KIND = "register-refusal"
STATUS_KIND = "register-status"
ANSWER_KINDS = {"acknowledgement": ACK_KIND, "refusal": REFUSAL_KIND, "status": STATUS_KIND}
# What each kind of answer must carry besides the envelope id.
REQUIRED_FIELDS = {"acknowledgement": "register_number", "refusal": "reason", "status": "status"}


@dataclass(frozen=True, slots=True)
class RegisterQueues:
    """The queues of one endpoint: documents in, answers out, unusable answers parked."""

    documents: str
    answers: str

    @property
    def answers_exchange(self) -> str:
        """The fanout exchange a register publishes its answers to, bound to ``answers``.

        It bears the answers queue's name, so one permission regex names a register's
        whole way out. A register never publishes through the default exchange: the
        write permission that would take also reaches every other queue of the vhost.
        """
        return self.answers

    @property
    def parked(self) -> str:
        """Where answers the hub cannot file (malformed, for an unknown document) wait."""
        return self.answers + PARKED_SUFFIX

    @classmethod
    def of(cls, endpoint: EndpointConfig) -> RegisterQueues:
        """The queues named by the endpoint's options ``queue_in`` and ``queue_out``.

        Both are templates over ``{system}`` and ``{office}``; by default
        ``legacy.{system}.{office}.in`` and ``legacy.{system}.{office}.out``. Templates
        without ``{office}`` give every endpoint of the system the same queues.
        """
        names = {"system": endpoint.system, "office": endpoint.office}
        queue_in, queue_out = _templates(endpoint)
        return cls(documents=queue_in.format(**names), answers=queue_out.format(**names))


def is_shared(endpoint: EndpointConfig) -> bool:
    """Whether the endpoint's interface is its system's shared one (no ``{office}`` in it).

    A template pair that names the office in one queue only (per-office documents, one
    answers queue for all, say) is an interface per office that shares a queue.
    """
    return not any(OFFICE_FIELD in template for template in _templates(endpoint))


def _templates(endpoint: EndpointConfig) -> tuple[str, str]:
    return (
        str(endpoint.options.get("queue_in", DEFAULT_QUEUE_IN)),
        str(endpoint.options.get("queue_out", DEFAULT_QUEUE_OUT)),
    )


@dataclass(frozen=True, slots=True)
class RegisterInterface:
    """One queue pair of one register system and the endpoints that use it.

    Per office (``legacy.alkohol.146501_1.in``): one endpoint. Shared
    (``legacy.alkohol.in``): every endpoint of the system whose templates give these
    names, told apart by each document's ``hub-office`` header.
    """

    system: str
    queues: RegisterQueues
    shared: bool
    # Endpoint names (``system@office``) in the region's order.
    endpoints: tuple[str, ...]

    @property
    def offices(self) -> tuple[str, ...]:
        """The offices whose documents travel through this interface."""
        return tuple(name.rpartition("@")[2] for name in self.endpoints)

    @property
    def name(self) -> str:
        """``system@office`` for an office's own interface, ``system`` for a shared one."""
        return self.system if self.shared else self.endpoints[0]


def register_interfaces(endpoints: Iterable[EndpointConfig]) -> list[RegisterInterface]:
    """The distinct interfaces of ``endpoints`` (the ``registers-amqp`` ones), in order.

    Endpoints of one system whose templates give the same queues share one interface.
    """
    grouped: dict[tuple[str, RegisterQueues], list[EndpointConfig]] = {}
    for endpoint in endpoints:
        grouped.setdefault((endpoint.system, RegisterQueues.of(endpoint)), []).append(endpoint)
    return [
        RegisterInterface(
            system=system,
            queues=queues,
            # Several offices on one pair share it whatever the templates look like.
            shared=len(members) > 1 or is_shared(members[0]),
            endpoints=tuple(member.name for member in members),
        )
        for (system, queues), members in grouped.items()
    ]


def message_properties(
    envelope: Envelope, endpoint: EndpointConfig, reply_queue: str
) -> pika.BasicProperties:
    """The AMQP properties a document travels to a register with (README.md's table).

    ``message_id`` is the envelope id, which the register deduplicates by: a publish
    repeated after a lost confirm is the same message.
    """
    headers: dict[str, Any] = {
        "hub-envelope-id": str(envelope.envelope_id),
        "hub-correlation-id": envelope.correlation_id,
        "hub-document-type": envelope.document_type,
        "hub-office": envelope.destination.office,
        "hub-system": endpoint.system,
        "hub-endpoint": endpoint.name,
        "hub-source": envelope.source,
        "hub-created-at": envelope.created_at.isoformat(),
        "hub-body-sha256": envelope.body_sha256,
        "content-type": envelope.content_type,
    }
    headers.update({f"hub-h-{name}": value for name, value in envelope.headers.items()})
    return pika.BasicProperties(
        message_id=str(envelope.envelope_id),
        correlation_id=envelope.correlation_id,
        content_type=envelope.content_type,
        type=envelope.document_type,
        reply_to=reply_queue,
        delivery_mode=pika.DeliveryMode.Persistent,
        timestamp=int(envelope.created_at.timestamp()),
        headers=headers,
    )


class MalformedAnswer(ValueError):
    """An answer the hub cannot read; it is parked, never filed."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of a register: about which document, what kind, its own id."""

    answer_id: str
    envelope_id: str
    kind: str
    detail: str

    @property
    def receipt_kind(self) -> str:
        """The receipt kind the answer is kept under."""
        return ANSWER_KINDS[self.kind]


def parse_answer(properties: pika.BasicProperties, body: bytes) -> Answer:
    """Read an answer from an answers queue (``legacy.<system>[.<office>].out``).

    Raises:
        MalformedAnswer: no message id, not a JSON object, an unknown kind, no envelope
            id, or a missing field its kind requires.
    """
    if not properties.message_id:
        raise MalformedAnswer("the answer has no message_id to be deduplicated by")
    try:
        values = json.loads(body)
    except ValueError as exc:
        raise MalformedAnswer(f"the answer is not JSON: {exc}") from exc
    if not isinstance(values, dict):
        raise MalformedAnswer("the answer is not a JSON object")
    kind = values.get("kind")
    if kind not in ANSWER_KINDS:
        raise MalformedAnswer(f"unknown answer kind {kind!r} (known: {sorted(ANSWER_KINDS)})")
    detail = values.get(REQUIRED_FIELDS[kind])
    if not isinstance(detail, str) or not detail:
        raise MalformedAnswer(f"a {kind} must carry {REQUIRED_FIELDS[kind]}")
    return Answer(str(properties.message_id), _envelope_id(values), str(kind), detail)


def _envelope_id(values: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(str(values.get("envelope_id"))))
    except ValueError as exc:
        raise MalformedAnswer(f"envelope_id {values.get('envelope_id')!r} is not a UUID") from exc
