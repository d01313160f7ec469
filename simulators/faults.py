"""Faults armed through a simulator's admin API, used up in the order they were armed."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Countdown(Protocol):
    """A fault that applies to the next ``times`` requests (None: until cleared)."""

    times: int | None


FaultT = TypeVar("FaultT", bound=Countdown)


def take_fault(armed: list[FaultT]) -> FaultT | None:
    """The fault for this request, using up one of its ``times`` (the caller holds the lock)."""
    if not armed:
        return None
    fault = armed[0]
    if fault.times is not None:
        fault.times -= 1
        if fault.times <= 0:
            armed.pop(0)
    return fault
