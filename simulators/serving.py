"""Serving a simulator the way the real systems answer: HTTP/1.1 with keep-alive.

Werkzeug's development server closes every connection, so a client measured against
it pays a TCP handshake per call that no real service charges. Standalone simulators
run under gunicorn instead: one process (their state lives in memory) with threads.
Tests that run a simulator inside their own process use :func:`loopback_server`.
"""

from __future__ import annotations

import socket
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hub.serving import GunicornServer

SIMULATOR_THREADS = 16


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Stay quiet: thousands of requests a second would drown every other log."""


def loopback_server(app: Flask, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded in-process server for ``app``; port 0 picks a free port."""
    return make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)


def serve_simulator(app: Flask, name: str, host: str, port: int) -> None:
    """Serve ``app`` under gunicorn until SIGTERM, printing ``<name> listening on URL`` once bound.

    Port 0 picks a free port first, so the line can name the real one.
    """
    port = port or free_port(host)

    def when_ready(_server: Any) -> None:
        print(f"{name} listening on http://{host}:{port}", flush=True)

    GunicornServer(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": 1,
            "threads": SIMULATOR_THREADS,
            "worker_class": "gthread",
            "keepalive": 30,
            "accesslog": None,
            "loglevel": "warning",
            "when_ready": when_ready,
        },
    ).run()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for a child told where to listen)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
