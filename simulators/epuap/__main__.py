"""Run the ePUAP simulator: ``python -m simulators.epuap --host 127.0.0.1 --port 8090``.

Once the socket is listening it prints exactly one line to stdout,
``epuap simulator listening on http://HOST:PORT``, so a parent process can wait for it
(and learn the real port when started with ``--port 0``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from simulators.epuap.server import DEFAULT_WSDL, create_app
from simulators.serving import serve_simulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m simulators.epuap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8090, help="port; 0 picks a free one")
    parser.add_argument("--wsdl", type=Path, default=DEFAULT_WSDL, help="pull.wsdl to serve")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM (how the demo stops its children); return the exit code."""
    args = _parse_args(argv)
    serve_simulator(create_app(wsdl_path=args.wsdl), "epuap simulator", args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
