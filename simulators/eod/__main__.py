"""``python -m simulators.eod --port 8091``: run the EOD simulator on loopback."""

from __future__ import annotations

import argparse

from werkzeug.serving import make_server

from simulators.eod.server import create_app


def main() -> None:
    """Serve until killed; print the real address once listening (port 0 picks one)."""
    parser = argparse.ArgumentParser(description="EOD (document-management) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    arguments = parser.parse_args()
    server = make_server(arguments.host, arguments.port, create_app(), threaded=True)
    print(f"eod simulator listening on http://{arguments.host}:{server.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
