"""``python -m simulators.eod --port 8091``: run the EOD simulator on loopback."""

from __future__ import annotations

import argparse

from simulators.eod.server import create_app
from simulators.serving import serve_simulator


def main() -> None:
    """Serve until SIGTERM; print the real address once listening (port 0 picks one)."""
    parser = argparse.ArgumentParser(description="EOD (document-management) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    arguments = parser.parse_args()
    serve_simulator(create_app(), "eod simulator", arguments.host, arguments.port)


if __name__ == "__main__":
    main()
