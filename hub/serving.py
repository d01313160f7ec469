"""Serving the hub's Flask app under gunicorn, the production WSGI server."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from hub.tls import TlsSetup


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn driven from code, so ``hub serve`` needs no separate config file."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        """Copy our options into gunicorn's settings."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """The WSGI application each gunicorn worker serves."""
        return self._app


def serve(
    app: Flask,
    host: str,
    port: int,
    workers: int = 2,
    threads: int = 4,
    *,
    tls: TlsSetup | None = None,
) -> None:
    """Serve ``app`` until interrupted (2 workers × 4 threads suits this 2-core machine).

    Args:
        app: the hub's Flask app.
        host: the address to bind.
        port: the port to bind.
        workers: gunicorn worker processes.
        threads: threads per worker (the gthread worker).
        tls: serve HTTPS (and ask for client certificates) as set up; None is plain HTTP.
    """
    GunicornServer(app, server_options(host, port, workers, threads, tls)).run()


def server_options(
    host: str, port: int, workers: int, threads: int, tls: TlsSetup | None
) -> dict[str, Any]:
    """gunicorn's settings for ``hub serve``: bind, workers, threads and TLS."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "accesslog": None,
        "loglevel": "warning",
    }
    if tls is not None:
        options.update(tls.gunicorn_options())
    return options
