"""The one explicit state machine of a message and of each of its deliveries.

::

    received → accepted → routed → delivering → delivered → confirmed
                   │          │         │  ↑
                   │          │         ↓  │
                   │          │       retrying
                   ↓          ↓         ↓
                rejected     dead      dead

``received`` is a document stored but not yet checked; ``rejected`` is input the hub
can never process (kept, with its reason, never queued); ``dead`` waits for an operator.
"""

from __future__ import annotations

from enum import StrEnum

from hub.errors import HubError


class MessageStatus(StrEnum):
    """Where a message stands on its journey."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    ROUTED = "routed"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    DEAD = "dead"
    REJECTED = "rejected"


class DeliveryStatus(StrEnum):
    """Where one delivery to one endpoint stands."""

    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    DEAD = "dead"


class IllegalTransition(HubError):
    """A state change the state machine does not allow; a bug, never input's fault."""

    code = "illegal-transition"


_MESSAGE_TRANSITIONS: dict[MessageStatus, frozenset[MessageStatus]] = {
    MessageStatus.RECEIVED: frozenset({MessageStatus.ACCEPTED, MessageStatus.REJECTED}),
    MessageStatus.ACCEPTED: frozenset(
        {MessageStatus.ROUTED, MessageStatus.REJECTED, MessageStatus.DEAD}
    ),
    MessageStatus.ROUTED: frozenset(
        {MessageStatus.DELIVERING, MessageStatus.DELIVERED, MessageStatus.DEAD}
    ),
    MessageStatus.DELIVERING: frozenset(
        {MessageStatus.DELIVERED, MessageStatus.RETRYING, MessageStatus.DEAD}
    ),
    MessageStatus.RETRYING: frozenset(
        {MessageStatus.DELIVERING, MessageStatus.DELIVERED, MessageStatus.DEAD}
    ),
    MessageStatus.DELIVERED: frozenset({MessageStatus.CONFIRMED}),
    MessageStatus.CONFIRMED: frozenset(),
    # A dead message comes back only through an operator's replay.
    MessageStatus.DEAD: frozenset({MessageStatus.ROUTED}),
    MessageStatus.REJECTED: frozenset(),
}

FINAL_DELIVERY_STATUSES = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.DEAD})
CLAIMABLE_DELIVERY_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRYING})


def allowed_next(status: MessageStatus) -> frozenset[MessageStatus]:
    """The statuses a message may move to from ``status``."""
    return _MESSAGE_TRANSITIONS[status]


def predecessors(status: MessageStatus) -> frozenset[MessageStatus]:
    """The statuses a message may reach ``status`` from (itself included)."""
    return frozenset(
        {current for current, following in _MESSAGE_TRANSITIONS.items() if status in following}
        | {status}
    )


def check_transition(current: MessageStatus, new: MessageStatus) -> None:
    """Raise :class:`IllegalTransition` unless ``current → new`` is allowed.

    Staying in the same status is allowed: redelivered work repeats its last write.
    """
    if new != current and new not in _MESSAGE_TRANSITIONS[current]:
        raise IllegalTransition(f"a message cannot go from {current} to {new}")
