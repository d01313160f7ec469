"""Run the ePUAP simulator: ``python -m simulators.epuap --host 127.0.0.1 --port 8090``.

Once the socket is listening it prints exactly one line to stdout,
``epuap simulator listening on http://HOST:PORT``, so a parent process can wait for it
(and learn the real port when started with ``--port 0``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from werkzeug.serving import make_server

from simulators.epuap.server import DEFAULT_WSDL, create_app


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m simulators.epuap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8090, help="port; 0 picks a free one")
    parser.add_argument("--wsdl", type=Path, default=DEFAULT_WSDL, help="pull.wsdl to serve")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request to stderr (noisy)"
    )
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    """Turn SIGTERM (how the demo stops its children) into a clean exit that closes the socket."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; return the process exit code."""
    args = _parse_args(argv)
    if not args.access_log:
        # Werkzeug logs each request at INFO; thousands of pulls would drown real output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = create_app(wsdl_path=args.wsdl)
    server = make_server(args.host, args.port, app, threaded=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    print(f"epuap simulator listening on http://{args.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
