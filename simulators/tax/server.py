"""The tax simulator: declarations registered over REST/JSON, once per idempotency key.

Interface (what the offices' tax systems offer, reduced to the essentials):

- ``POST /api/v1/declarations``: a declaration as JSON (``Content-Type:
  application/json``) with header ``Idempotency-Key`` (required). The body is an object
  with at least ``form`` (the declaration form, e.g. ``IN-1``, ``DN-1``) as a non-empty
  string and ``taxpayer`` as an object. Answers ``201 {"declaration_id", "status":
  "registered", "office"}`` the first time a key is seen, ``200`` with the same
  declaration for a repeated key (nothing is registered twice), and RFC 7807 problems:
  ``400`` (``missing-idempotency-key``, ``not-json``, ``invalid-declaration``), ``409``
  (``idempotency-key-reused``: the same key with another body), ``415``
  (``unsupported-media-type``), ``422`` (``refused``, injected), ``503`` with
  ``Retry-After`` (``unavailable``, injected).
- ``GET /api/v1/declarations/<id>``: the declaration's status.
- Admin: ``GET /_sim/stats``, ``GET /_sim/received`` (per idempotency key: arrivals and
  the one record), ``POST /_sim/faults`` ``{"kind": "down"|"slow"|"transient"|
  "permanent"|"lose_answer", "times": n, "delay_s": s, "retry_after_s": s}``,
  ``DELETE /_sim/faults``, ``POST /_sim/reset``.

``down`` and ``transient`` both answer 503 (a gateway in front of a stopped system and
the system's own "try later"); ``lose_answer`` registers, then answers only after
``delay_s``, after the caller stopped waiting.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from flask import Flask, Response, jsonify, request

from simulators.faults import take_fault

DECLARATIONS_PATH = "/api/v1/declarations"


class FaultKind(StrEnum):
    """How the simulated tax system misbehaves for the next requests."""

    DOWN = "down"
    SLOW = "slow"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    LOSE_ANSWER = "lose_answer"


@dataclass
class Fault:
    """One armed misbehaviour, for the next ``times`` requests (None: until cleared)."""

    kind: FaultKind
    times: int | None = None
    delay_s: float = 0.0
    retry_after_s: int | None = None

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        """Read a fault from the admin API (raises ValueError, KeyError or TypeError)."""
        times, retry_after = spec.get("times"), spec.get("retry_after_s")
        return cls(
            kind=FaultKind(str(spec["kind"])),
            times=None if times is None else int(times),
            delay_s=float(spec.get("delay_s", 0.0)),
            retry_after_s=None if retry_after is None else int(retry_after),
        )


@dataclass(frozen=True)
class Declaration:
    """One registered declaration and the digest of the body it was registered from."""

    declaration_id: str
    office: str
    form: str
    body_sha256: str
    registered_at: str


@dataclass
class TaxRegistry:
    """Declarations by idempotency key, arrivals and armed faults, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_key: dict[str, Declaration] = field(default_factory=dict)
    arrivals: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    faulted: int = 0

    def next_fault(self) -> Fault | None:
        """The fault for this request, if any, using up one of its ``times``."""
        with self.lock:
            self.requests += 1
            fault = take_fault(self.faults)
            if fault is not None:
                self.faulted += 1
            return fault

    def register(
        self, key: str, office: str, form: str, body_sha256: str
    ) -> tuple[Declaration, bool]:
        """Register under ``key`` once; return the declaration and whether it is new."""
        with self.lock:
            self.arrivals[key] += 1
            known = self.by_key.get(key)
            if known is not None:
                return known, False
            now = datetime.now(UTC)
            number = f"DEK/{office or 'X'}/{now.year}/{len(self.by_key) + 1:06d}"
            declaration = Declaration(number, office, form, body_sha256, now.isoformat())
            self.by_key[key] = declaration
            return declaration, True

    def find(self, declaration_id: str) -> Declaration | None:
        """The declaration registered as ``declaration_id``, if any."""
        with self.lock:
            return next(
                (d for d in self.by_key.values() if d.declaration_id == declaration_id), None
            )

    def stats(self) -> dict[str, int]:
        """Totals for ``GET /_sim/stats``."""
        with self.lock:
            return {
                "requests": self.requests,
                "registered": len(self.by_key),
                "arrivals": sum(self.arrivals.values()),
                "repeated_keys": sum(count - 1 for count in self.arrivals.values()),
                "faulted": self.faulted,
            }

    def received(self) -> dict[str, dict[str, Any]]:
        """Per idempotency key: how often it arrived and the one record it made."""
        with self.lock:
            return {
                key: {
                    "count": count,
                    "records": 1,
                    "number": self.by_key[key].declaration_id,
                    "form": self.by_key[key].form,
                    "sha256": self.by_key[key].body_sha256,
                }
                for key, count in self.arrivals.items()
                if key in self.by_key
            }

    def reset(self) -> None:
        """Forget everything."""
        with self.lock:
            self.by_key.clear()
            self.arrivals.clear()
            self.faults.clear()
            self.requests = self.faulted = 0


def create_app(
    registry: TaxRegistry | None = None, sleep: Callable[[float], None] = time.sleep
) -> Flask:
    """The tax simulator as a Flask app."""
    app = Flask("tax-simulator")
    state = registry or TaxRegistry()
    app.config["REGISTRY"] = state

    @app.post(DECLARATIONS_PATH)
    def register_declaration() -> tuple[Response, int]:
        fault = state.next_fault()
        if fault is not None:
            refused = _apply_fault(fault, sleep)
            if refused is not None:
                return refused
        answer = _register(state, request.get_data(), request.headers)
        if fault is not None and fault.kind is FaultKind.LOSE_ANSWER:
            sleep(fault.delay_s)
        return answer

    @app.get(f"{DECLARATIONS_PATH}/<path:declaration_id>")
    def declaration_status(declaration_id: str) -> tuple[Response, int]:
        found = state.find(declaration_id)
        if found is None:
            return _problem(404, "unknown-declaration", f"no declaration {declaration_id}")
        return jsonify({"declaration_id": found.declaration_id, "status": "registered"}), 200

    @app.get("/_sim/stats")
    def stats() -> Response:
        return jsonify(state.stats())

    @app.get("/_sim/received")
    def received() -> Response:
        return jsonify(state.received())

    @app.post("/_sim/faults")
    def arm_fault() -> tuple[Response, int]:
        try:
            fault = Fault.from_json(request.get_json(force=True))
        except (KeyError, ValueError, TypeError) as exc:
            return jsonify({"error": f"bad fault: {exc}"}), 400
        with state.lock:
            state.faults.append(fault)
        return jsonify({"armed": fault.kind.value}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
        return jsonify({"faults": 0})

    @app.post("/_sim/reset")
    def reset() -> Response:
        state.reset()
        return jsonify({"reset": True})

    return app


def _register(state: TaxRegistry, data: bytes, headers: Any) -> tuple[Response, int]:
    """Check one declaration and register it once per idempotency key."""
    key = headers.get("Idempotency-Key", "")
    if not key:
        return _problem(400, "missing-idempotency-key", "Idempotency-Key header is required")
    media_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return _problem(
            415, "unsupported-media-type", f"expected application/json, not {media_type!r}"
        )
    declaration, problem = _declaration(data)
    if problem is not None:
        return problem
    digest = hashlib.sha256(data).hexdigest()
    office = str(headers.get("X-Office", declaration.get("office", "")))
    registered, new = state.register(key, office, str(declaration["form"]), digest)
    if registered.body_sha256 != digest:
        return _problem(409, "idempotency-key-reused", f"key {key} was used for another body")
    answer = {
        "declaration_id": registered.declaration_id,
        "status": "registered",
        "office": registered.office,
        "registered_at": registered.registered_at,
    }
    return jsonify(answer), 201 if new else 200


def _declaration(data: bytes) -> tuple[dict[str, Any], tuple[Response, int] | None]:
    """The declaration as a dict, or the problem to answer instead."""
    try:
        declaration = json.loads(data)
    except ValueError as exc:
        return {}, _problem(400, "not-json", f"the body is not JSON: {exc}")
    if not isinstance(declaration, dict):
        return {}, _problem(400, "invalid-declaration", "a declaration is a JSON object")
    missing = [
        name
        for name, kind in (("form", str), ("taxpayer", dict))
        if not isinstance(declaration.get(name), kind) or not declaration.get(name)
    ]
    if missing:
        detail = f"missing or empty: {', '.join(missing)}"
        return declaration, _problem(400, "invalid-declaration", detail)
    return declaration, None


def _apply_fault(fault: Fault, sleep: Callable[[float], None]) -> tuple[Response, int] | None:
    """Carry out an armed fault; None means "go on and answer" (after a delay)."""
    if fault.kind is FaultKind.SLOW:
        sleep(fault.delay_s)
        return None
    if fault.kind in {FaultKind.DOWN, FaultKind.TRANSIENT}:
        response, status = _problem(503, "unavailable", "the tax system is unavailable")
        response.headers["Retry-After"] = str(fault.retry_after_s or 1)
        return response, status
    if fault.kind is FaultKind.PERMANENT:
        return _problem(422, "refused", "the tax system refuses this declaration")
    return None


def _problem(status: int, code: str, detail: str) -> tuple[Response, int]:
    response = jsonify(
        {"type": f"urn:tax:problem:{code}", "title": code, "status": status, "detail": detail}
    )
    response.mimetype = "application/problem+json"
    return response, status
