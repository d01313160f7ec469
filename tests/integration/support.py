"""Shared pieces of the integration tests: the test offices and simulators served in a thread.

Kept out of ``conftest.py`` so test modules can import them by a name no other test
folder uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from flask import Flask

from simulators.serving import loopback_server

OFFICES = [
    ("146501_1", "Urząd m.st. Warszawy", "/umwarszawa/skrytka"),
    ("1421", "Starostwo Powiatowe w Pruszkowie", "/sppruszkow/skrytka"),
]


@dataclass
class Simulator:
    """A simulator app served on a loopback port in a thread."""

    url: str
    app: Flask
    stop: Callable[[], None]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


def serve_in_thread(app: Flask) -> Simulator:
    server = loopback_server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(5)

    return Simulator(f"http://127.0.0.1:{server.port}", app, stop)
