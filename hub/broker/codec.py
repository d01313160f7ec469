"""An Envelope on the wire: the body is the AMQP body, every other fact an AMQP header."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pika

from hub.envelope import Address, Envelope

HEADER_PREFIX = "hub-"
CORRELATION_HEADER = "hub-correlation-id"


def to_amqp(
    envelope: Envelope, message_id: str, extra: dict[str, Any] | None = None
) -> tuple[pika.BasicProperties, bytes]:
    """Properties and body of an AMQP message carrying ``envelope``.

    ``message_id`` is what consumers deduplicate by: the envelope id for routing, the
    delivery id for deliveries.
    """
    headers: dict[str, Any] = {
        "hub-envelope-id": str(envelope.envelope_id),
        CORRELATION_HEADER: envelope.correlation_id,
        "hub-document-type": envelope.document_type,
        "hub-source": envelope.source,
        "hub-destination": str(envelope.destination),
        "hub-created-at": envelope.created_at.isoformat(),
    }
    headers.update({f"hub-h-{key}": value for key, value in envelope.headers.items()})
    headers.update(extra or {})
    properties = pika.BasicProperties(
        message_id=message_id,
        correlation_id=envelope.correlation_id,
        content_type=envelope.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=headers,
    )
    return properties, envelope.body


def from_amqp(properties: pika.BasicProperties, body: bytes) -> Envelope:
    """Rebuild the envelope a message carries.

    Raises:
        KeyError or ValueError: the message was not made by :func:`to_amqp`.
    """
    headers = properties.headers or {}
    return Envelope(
        envelope_id=uuid.UUID(_text(headers["hub-envelope-id"])),
        correlation_id=_text(headers[CORRELATION_HEADER]),
        document_type=_text(headers["hub-document-type"]),
        source=_text(headers["hub-source"]),
        destination=Address.parse(_text(headers["hub-destination"])),
        created_at=datetime.fromisoformat(_text(headers["hub-created-at"])),
        content_type=properties.content_type or "application/octet-stream",
        headers={
            key.removeprefix("hub-h-"): _text(value)
            for key, value in headers.items()
            if key.startswith("hub-h-")
        },
        body=body,
    )


def header(properties: pika.BasicProperties, name: str) -> str | None:
    """One header as text, or None."""
    value = (properties.headers or {}).get(name)
    return None if value is None else _text(value)


def _text(value: Any) -> str:
    # pika hands back header strings as bytes when they came from another client.
    return value.decode() if isinstance(value, bytes) else str(value)
