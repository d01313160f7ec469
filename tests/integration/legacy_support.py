"""Shared pieces of the legacy-system tests: a region file per kind, documents to send.

Each test module overrides the ``region_path`` fixture with a region that declares its
legacy system for both test offices, so the ``settings``, ``store`` and ``hub`` fixtures
of ``conftest.py`` run unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support import OFFICES

from hub.envelope import Address, Envelope
from hub.inbound import accept_into
from hub.store.models import DeliveryRow


def toml_value(value: Any) -> str:
    """``value`` written as TOML (strings, numbers, lists, tables of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    return "[" + ", ".join(toml_value(item) for item in value) + "]"


def write_region(
    path: Path,
    systems: Sequence[Mapping[str, Any]],
    routes: Sequence[Mapping[str, Any]],
    inbound: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """A region file with the two test offices and the given tables."""
    lines = ['[region]\nname = "legacy test region"\n']
    for office_id, name, esp in OFFICES:
        lines.append(f'[[offices]]\nid = "{office_id}"\nname = "{name}"\nesp = "{esp}"\n')
    for table, items in (("systems", systems), ("routes", routes), ("inbound", inbound)):
        for item in items:
            body = "\n".join(f"{key} = {toml_value(value)}" for key, value in item.items())
            lines.append(f"[[{table}]]\n{body}\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def submit(hub: Any, envelope: Envelope) -> str:
    """Hand ``envelope`` to the hub as an inbound adapter would; return its message id."""
    assert accept_into(hub.store)(envelope) == "accepted"
    return str(envelope.envelope_id)


def document(
    office: str,
    document_type: str,
    body: bytes,
    content_type: str = "application/xml",
    **headers: str,
) -> Envelope:
    """A document from the portal addressed to ``office``."""
    return Envelope(
        document_type=document_type,
        source="portal",
        destination=Address(office),
        body=body,
        content_type=content_type,
        headers=headers,
    )


def delivery_of(hub: Any, message_id: str) -> DeliveryRow:
    """The one delivery of ``message_id``."""
    with hub.store.session() as session:
        [row] = session.query(DeliveryRow).filter(DeliveryRow.message_id == message_id).all()
        return row


def every_message_retried(hub: Any, message_ids: Sequence[str]) -> bool:
    """Whether each message has at least one attempt that ended in ``retry``."""
    return all(
        any(attempt.outcome == "retry" for attempt in hub.attempts(message_id))
        for message_id in message_ids
    )
