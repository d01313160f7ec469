"""Unit tests are pure: any attempt to open a network connection fails the test."""

from __future__ import annotations

import socket
from typing import Any

import pytest


class NetworkForbidden(RuntimeError):
    """Raised when a unit test tries to reach the network."""


@pytest.fixture(autouse=True)
def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise NetworkForbidden("unit tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
