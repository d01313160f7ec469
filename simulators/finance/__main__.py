"""``python -m simulators.finance --port 8093``: run the finance (SOAP) simulator on loopback."""

from __future__ import annotations

import argparse

from simulators.finance.server import create_app
from simulators.serving import serve_simulator


def main() -> None:
    """Serve until SIGTERM; print the real address once listening (port 0 picks one)."""
    parser = argparse.ArgumentParser(description="finance system (SOAP) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    arguments = parser.parse_args()
    serve_simulator(create_app(), "finance simulator", arguments.host, arguments.port)


if __name__ == "__main__":
    main()
