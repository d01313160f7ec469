"""Query results turned into plain JSON-ready values, masked for whoever is looking.

The dashboard's pages and its JSON API show the same things, so both take them from
here: one place decides what a viewer may see.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from monitoring.auth import Account
from monitoring.masking import (
    HIDDEN,
    mask_details,
    mask_text,
    mask_words,
    sender_of,
    viewer_headers,
)
from monitoring.queries import EndpointFigures, OfficeFigures, Trace

BODY_PREVIEW_BYTES = 4000


def plain(value: Any) -> Any:
    """``value`` with dataclasses as dicts and times as ISO 8601 strings, ready for JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


def endpoint_row(item: EndpointFigures, account: Account) -> dict[str, Any]:
    """One endpoint's figures, with the error rate and its last error (masked for viewers)."""
    row: dict[str, Any] = plain(item)
    row["error_rate"] = round(item.error_rate, 4)
    if not account.sees_personal_data:
        row["last_error"] = mask_text(item.last_error)
        row["circuit_reason"] = mask_text(item.circuit_reason)
    return row


def office_row(item: OfficeFigures) -> dict[str, Any]:
    """One office's figures with its error rate."""
    row: dict[str, Any] = plain(item)
    row["error_rate"] = round(item.error_rate, 4)
    return row


def trace_document(found: Trace, account: Account) -> dict[str, Any]:
    """The whole trace of a message, masked for those who may not see personal data.

    The first keys are those of the original ``/api/messages/<id>`` answer, kept as they were.
    """
    message = found.message
    sees = account.sees_personal_data
    sender = sender_of(found.body, message["content_type"])
    document = {
        "envelope_id": message["id"],
        "correlation_id": message["correlation_id"],
        "document_type": message["document_type"],
        "source": message["source"],
        "destination": message["destination"],
        "status": message["status"],
        "status_reason": _masked(message["status_reason"], sees),
        "received_at": message["received_at"],
        "delivered_at": message["delivered_at"],
        "deliveries": [_delivery(delivery, sees) for delivery in found.deliveries],
        "external_id": message["external_id"],
        "submitted_at": message["submitted_at"],
        "content_type": message["content_type"],
        "size_bytes": message["size_bytes"],
        "body_sha256": message["body_sha256"],
        "personal_data_masked": not sees,
        "headers": found.headers if sees else viewer_headers(found.headers),
        "sender": None if sender is None else plain(sender if sees else sender.masked()),
        "body_preview": _preview(found.body) if sees else None,
        "hops": [{**plain(hop), "detail": _masked(hop.detail, sees)} for hop in found.hops],
        "signature_checks": [_signature(check, sees) for check in found.signature_checks],
        "receipts": [_receipt(receipt, sees) for receipt in found.receipts],
        "audit": [_audit(entry, sees) for entry in found.audit],
        "case_events": [_case_event(event, sees) for event in found.case_events],
        "same_case": found.same_case,
    }
    return plain(document)  # type: ignore[no-any-return]


def _masked(text: str | None, sees: bool) -> str | None:
    return text if sees else mask_text(text)


def _delivery(delivery: dict[str, Any], sees: bool) -> dict[str, Any]:
    return {
        "delivery_id": delivery["id"],
        "endpoint": delivery["endpoint"],
        "route": delivery["route"],
        "status": delivery["status"],
        "attempts": [
            {
                "number": attempt["number"],
                "started_at": attempt["started_at"],
                "finished_at": attempt["finished_at"],
                "outcome": attempt["outcome"],
                "error": _masked(attempt["error_text"], sees),
                "duration_ms": attempt["duration_ms"],
                "worker": attempt["worker"],
            }
            for attempt in delivery["attempts"]
        ],
        "external_reference": delivery["external_reference"],
        "last_error": _masked(delivery["last_error"], sees),
        "awaited_receipt": delivery["awaited_receipt"],
        "receipt_due_at": delivery["receipt_due_at"],
        "created_at": delivery["created_at"],
        "delivered_at": delivery["delivered_at"],
    }


def _signature(check: dict[str, Any], sees: bool) -> dict[str, Any]:
    if sees:
        return check
    return {
        **check,
        "signer": mask_words(check["signer"] or ""),
        "reason": mask_text(check["reason"]),
    }


def _receipt(receipt: dict[str, Any], sees: bool) -> dict[str, Any]:
    # A receipt's platform id may name its recipient's mailbox; its kind, time and whether
    # its signature verified are what a viewer watches.
    if sees or receipt.get("external_id") is None:
        return receipt
    return {**receipt, "external_id": HIDDEN}


def _case_event(event: dict[str, Any], sees: bool) -> dict[str, Any]:
    if sees or not isinstance(event.get("details"), dict):
        return event
    return {**event, "details": mask_details(event["details"])}


def alert_entry(alert: dict[str, Any], account: Account) -> dict[str, Any]:
    """One alert of the alert log, its details masked for viewers."""
    if account.sees_personal_data:
        return alert
    return {**alert, "details": mask_details(alert["details"])}


def _audit(entry: dict[str, Any], sees: bool) -> dict[str, Any]:
    if sees:
        return entry
    details = {
        key: mask_text(value) if isinstance(value, str) else value
        for key, value in entry["details"].items()
    }
    return {**entry, "details": details}


def _preview(body: bytes) -> str:
    text = body[:BODY_PREVIEW_BYTES].decode("utf-8", errors="replace")
    return text + ("…" if len(body) > BODY_PREVIEW_BYTES else "")
