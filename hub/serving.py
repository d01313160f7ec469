"""Serving the hub's Flask app under gunicorn, the production WSGI server."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


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


def serve(app: Flask, host: str, port: int, workers: int = 2, threads: int = 4) -> None:
    """Serve ``app`` until interrupted (2 workers × 4 threads suits this 2-core machine)."""
    GunicornServer(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": None,
            "loglevel": "warning",
        },
    ).run()
