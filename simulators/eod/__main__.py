"""``python -m simulators.eod --port 8091``: run the EOD simulator on loopback."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulators.eod.server import create_app
from simulators.serving import serve_simulator


def main() -> None:
    """Serve until SIGTERM; print the real address once listening (port 0 picks one)."""
    parser = argparse.ArgumentParser(description="EOD (document-management) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument(
        "--trust-ca", type=Path, help="PEM of the CA whose certificates may seal deliveries"
    )
    parser.add_argument(
        "--require-seal", action="store_true", help="refuse deliveries without the hub's seal"
    )
    arguments = parser.parse_args()
    trusted = arguments.trust_ca.read_bytes() if arguments.trust_ca else None
    app = create_app(trusted_ca_pem=trusted, require_seal=arguments.require_seal)
    serve_simulator(app, "eod simulator", arguments.host, arguments.port)


if __name__ == "__main__":
    main()
