"""The EOD simulator: registers documents, honours idempotency keys, counts every arrival.

Interface (what a real EOD's registration service offers, reduced to the essentials):

- ``POST /offices/<office>/documents``: body = the document; headers ``Idempotency-Key``
  (required), ``X-Envelope-ID``, ``X-Correlation-ID``, ``X-Document-Type``. Answers
  ``201 {"registration_number": ...}`` the first time a key is seen and ``200`` with the
  same number for a repeated key (nothing is registered twice). A request without an
  idempotency key, or with an empty body, is ``400`` (RFC 7807 problem JSON). A body of
  type ``application/vnd.regional-hub.delivery+xml`` is the hub's sealed delivery: with a
  trusted CA configured the EOD checks the seal (``400 seal-invalid`` if it does not
  hold) and registers the document inside; with ``require_seal`` an unsealed delivery is
  ``400 seal-missing``.
- ``GET /_sim/stats``: totals; ``GET /_sim/received``: arrivals per envelope id;
  ``GET /_sim/documents``: registrations per document (base64 SHA-1 of the document
  itself, unsealed: ePUAP's digest), so a document stored twice under two ids shows;
  ``POST /_sim/faults``: inject ``{"kind": "http503"|"http429"|"http400"|"delay"|"down", "times": n,
  "delay_s": s, "retry_after_s": s}``; ``DELETE /_sim/faults``; ``POST /_sim/reset``.

Tests prove exactly-once delivery from ``/_sim/received``: every envelope id once.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from simulators.eod.seal_check import SEALED_CONTENT_TYPE, SealRejected, opened, unseal
from simulators.faults import take_fault


@dataclass
class Fault:
    """One injected misbehaviour, for the next ``times`` requests (or until cleared)."""

    kind: str
    times: int | None
    delay_s: float = 0.0
    retry_after_s: int | None = None


@dataclass
class Registry:
    """What the simulated EOD has registered, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_key: dict[str, str] = field(default_factory=dict)
    arrivals: Counter[str] = field(default_factory=Counter)
    received_at: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    repeated_keys: int = 0
    faults: list[Fault] = field(default_factory=list)
    faulted: int = 0
    sealed: int = 0
    registrations_by_digest: Counter[str] = field(default_factory=Counter)

    def next_fault(self) -> Fault | None:
        """The fault to apply to this request, if any, using one of its ``times``."""
        with self.lock:
            fault = take_fault(self.faults)
            if fault is not None:
                self.faulted += 1
            return fault

    def register(
        self, office: str, key: str, envelope_id: str, document: bytes = b""
    ) -> tuple[str, bool]:
        """Register under ``key`` once; return the registration number and whether it was new."""
        digest = base64.b64encode(hashlib.sha1(document).digest()).decode()  # noqa: S324
        with self.lock:
            self.requests += 1
            self.arrivals[envelope_id] += 1
            if key in self.by_key:
                self.repeated_keys += 1
                return self.by_key[key], False
            number = f"{office}/KW/{len(self.by_key) + 1:07d}/{datetime.now(UTC).year}"
            self.by_key[key] = number
            self.received_at[envelope_id] = datetime.now(UTC).isoformat()
            self.registrations_by_digest[digest] += 1
            return number, True


def create_app(
    registry: Registry | None = None,
    trusted_ca_pem: bytes | None = None,
    *,
    require_seal: bool = False,
) -> Flask:
    """The EOD simulator as a Flask app; ``trusted_ca_pem`` lets it check the hub's seal."""
    app = Flask("eod-simulator")
    state = registry or Registry()
    app.config["REGISTRY"] = state

    def unsealed_document() -> bytes | tuple[Response, int]:
        """The document the request carries, its seal checked; or the problem to answer."""
        body = request.get_data()
        if request.mimetype != SEALED_CONTENT_TYPE:
            if require_seal:
                return _problem(400, "seal-missing", "deliveries must carry the hub's seal")
            return body
        try:
            document = unseal(body, trusted_ca_pem) if trusted_ca_pem is not None else opened(body)
        except SealRejected as exc:
            return _problem(400, "seal-invalid", str(exc))
        with state.lock:
            state.sealed += 1
        return document

    @app.post("/offices/<office>/documents")
    def register_document(office: str) -> Response | tuple[Response, int]:
        fault = state.next_fault()
        if fault is not None:
            faulty = _apply_fault(fault)
            if faulty is not None:
                return faulty
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return _problem(400, "missing-idempotency-key", "Idempotency-Key header is required")
        if not request.get_data():
            return _problem(400, "empty-document", "the request carries no document")
        document = unsealed_document()
        if not isinstance(document, bytes):
            return document
        envelope_id = request.headers.get("X-Envelope-ID", key)
        number, new = state.register(office, key, envelope_id, document)
        return jsonify({"registration_number": number, "office": office}), 201 if new else 200

    @app.get("/_sim/stats")
    def stats() -> Response:
        with state.lock:
            repeated = sum(count - 1 for count in state.arrivals.values() if count > 1)
            return jsonify(
                {
                    "requests": state.requests,
                    "registered": len(state.by_key),
                    "envelopes": len(state.arrivals),
                    "repeated_arrivals": repeated,
                    "repeated_keys": state.repeated_keys,
                    "faulted": state.faulted,
                    "sealed": state.sealed,
                }
            )

    @app.get("/_sim/received")
    def received() -> Response:
        with state.lock:
            return jsonify(
                {
                    envelope_id: {"count": count, "received_at": state.received_at.get(envelope_id)}
                    for envelope_id, count in state.arrivals.items()
                }
            )

    @app.get("/_sim/documents")
    def documents() -> Response:
        with state.lock:
            return jsonify(dict(state.registrations_by_digest))

    @app.post("/_sim/faults")
    def add_fault() -> tuple[Response, int]:
        spec: dict[str, Any] = request.get_json(force=True)
        fault = Fault(
            kind=str(spec["kind"]),
            times=None if spec.get("times") is None else int(spec["times"]),
            delay_s=float(spec.get("delay_s", 0.0)),
            retry_after_s=spec.get("retry_after_s"),
        )
        with state.lock:
            state.faults.append(fault)
        return jsonify({"faults": len(state.faults)}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
        return jsonify({"faults": 0})

    @app.post("/_sim/reset")
    def reset() -> Response:
        with state.lock:
            state.by_key.clear()
            state.arrivals.clear()
            state.received_at.clear()
            state.registrations_by_digest.clear()
            state.faults.clear()
            state.requests = state.repeated_keys = state.faulted = state.sealed = 0
        return jsonify({"reset": True})

    return app


def _apply_fault(fault: Fault) -> tuple[Response, int] | None:
    if fault.kind == "delay":
        time.sleep(fault.delay_s)
        return None
    if fault.kind in {"http503", "down"}:
        response, status = _problem(503, "unavailable", "the EOD is down for maintenance")
        if fault.retry_after_s is not None:
            response.headers["Retry-After"] = str(fault.retry_after_s)
        return response, status
    if fault.kind == "http429":
        response, status = _problem(429, "too-many-requests", "slow down")
        response.headers["Retry-After"] = str(fault.retry_after_s or 1)
        return response, status
    if fault.kind == "http400":
        return _problem(400, "refused", "the EOD refuses this document")
    return None


def _problem(status: int, code: str, detail: str) -> tuple[Response, int]:
    response = jsonify(
        {"type": f"urn:eod:problem:{code}", "title": code, "status": status, "detail": detail}
    )
    response.mimetype = "application/problem+json"
    return response, status
