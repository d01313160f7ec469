"""Run the ePUAP simulator: ``python -m simulators.epuap --host 127.0.0.1 --port 8090``.

With ``--keystore DIR`` (as ``hub keys init`` writes it) the simulator trusts
``DIR/ca.pem``, requires WS-Security on every call and signs answers, UPPs and UPDs
with the identity ``epuap``; without it, calls go unsigned and receipts are signed
with a throwaway identity (see ``GET /_sim/identity``).

Once the socket is listening it prints exactly one line to stdout,
``epuap simulator listening on http://HOST:PORT``, so a parent process can wait for it
(and learn the real port when started with ``--port 0``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flask import Flask

from hub.errors import ConfigurationError
from hub.signing.keystore import Keystore
from simulators.epuap.receipts import PLATFORM_IDENTITY
from simulators.epuap.send import DEFAULT_UPD_DELAY_S
from simulators.epuap.server import DEFAULT_WSDL, create_app
from simulators.serving import serve_simulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m simulators.epuap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8090, help="port; 0 picks a free one")
    parser.add_argument("--wsdl", type=Path, default=DEFAULT_WSDL, help="pull.wsdl to serve")
    parser.add_argument(
        "--keystore",
        type=Path,
        default=None,
        help=f"folder with ca.pem and the identity {PLATFORM_IDENTITY!r}: turns WS-Security on",
    )
    parser.add_argument(
        "--upd-delay-s",
        type=float,
        default=DEFAULT_UPD_DELAY_S,
        help="seconds until a dorecz addressee picks up and the UPD is issued",
    )
    return parser.parse_args(argv)


def _app(args: argparse.Namespace) -> Flask:
    """Build the app the command line describes.

    Raises:
        ConfigurationError: the keystore lacks ca.pem or the epuap identity.
    """
    if args.keystore is None:
        return create_app(wsdl_path=args.wsdl, upd_delay_s=args.upd_delay_s)
    keystore = Keystore(args.keystore)
    return create_app(
        wsdl_path=args.wsdl,
        trusted_ca_pems=[keystore.ca_certificate_pem()],
        identity=keystore.identity(PLATFORM_IDENTITY),
        upd_delay_s=args.upd_delay_s,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM (how the demo stops its children); return the exit code."""
    args = _parse_args(argv)
    try:
        app = _app(args)
    except ConfigurationError as exc:
        print(f"epuap simulator: {exc.reason}", file=sys.stderr)
        return 2
    serve_simulator(app, "epuap simulator", args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
