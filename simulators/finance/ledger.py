"""What the simulated finance system has registered, and the faults armed against it.

Kept apart from the SOAP plumbing so the rules read on their own: one registration per
idempotency key, every arrival counted, faults taken one request at a time.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from simulators.faults import take_fault


class FaultKind(StrEnum):
    """How the simulated system misbehaves for the next requests."""

    DOWN = "down"  # HTTP 503 from the gateway in front of it, no SOAP at all
    SLOW = "slow"  # answers normally after ``delay_s``
    TRANSIENT = "transient"  # soap:Server Fault: try again later
    PERMANENT = "permanent"  # soap:Client Fault: the system refuses the document
    LOSE_ANSWER = "lose_answer"  # registers, then answers only after ``delay_s``


@dataclass
class Fault:
    """One armed misbehaviour, for the next ``times`` requests (None: until cleared)."""

    kind: FaultKind
    times: int | None = None
    delay_s: float = 0.0

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Fault:
        """Read ``{"kind": ..., "times": n, "delay_s": s}`` (raises ValueError or KeyError)."""
        times = spec.get("times")
        return cls(
            kind=FaultKind(str(spec["kind"])),
            times=None if times is None else int(times),
            delay_s=float(spec.get("delay_s", 0.0)),
        )


@dataclass(frozen=True)
class Registration:
    """One document the finance system registered."""

    number: str
    office: str
    kind: str
    case_id: str
    registered_at: datetime


@dataclass
class Ledger:
    """Registrations by idempotency key, arrivals and armed faults, guarded by one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_key: dict[str, Registration] = field(default_factory=dict)
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

    def arm(self, fault: Fault) -> None:
        """Add ``fault`` behind those already armed."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Disarm every fault: the system is back."""
        with self.lock:
            self.faults.clear()

    def register(self, key: str, office: str, kind: str, case_id: str) -> tuple[Registration, bool]:
        """Register under ``key`` once; return the registration and whether it is new."""
        with self.lock:
            self.arrivals[key] += 1
            known = self.by_key.get(key)
            if known is not None:
                return known, False
            now = datetime.now(UTC)
            number = f"FK/{office}/{now.year}/{len(self.by_key) + 1:06d}"
            registration = Registration(number, office, kind, case_id, now)
            self.by_key[key] = registration
            return registration, True

    def registration(self, key: str) -> Registration | None:
        """The registration made under ``key``, if any."""
        with self.lock:
            return self.by_key.get(key)

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
                key: {"count": count, "records": 1, "number": self.by_key[key].number}
                for key, count in self.arrivals.items()
                if key in self.by_key
            }

    def reset(self) -> None:
        """Forget everything (between demo runs)."""
        with self.lock:
            self.by_key.clear()
            self.arrivals.clear()
            self.faults.clear()
            self.requests = self.faulted = 0
