"""``python -m simulators.tax --port 8094``: run the tax (REST/JSON) simulator on loopback."""

from __future__ import annotations

import argparse

from simulators.serving import serve_simulator
from simulators.tax.server import create_app


def main() -> None:
    """Serve until SIGTERM; print the real address once listening (port 0 picks one)."""
    parser = argparse.ArgumentParser(description="tax system (REST/JSON) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8094)
    arguments = parser.parse_args()
    serve_simulator(create_app(), "tax simulator", arguments.host, arguments.port)


if __name__ == "__main__":
    main()
