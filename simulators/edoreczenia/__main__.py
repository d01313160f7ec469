"""Run the e-Doręczenia simulator: ``python -m simulators.edoreczenia --host 127.0.0.1 --port 0``.

Once the socket is listening it prints exactly one line to stdout,
``edoreczenia simulator listening on http://HOST:PORT``, so a parent process can wait for
it (and learn the real port when started with ``--port 0``). The UA API is under
``/api/v1``, the token endpoint at ``/oauth2/token``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from simulators.edoreczenia.contract import DEFAULT_CONTRACT
from simulators.edoreczenia.mailboxes import DEFAULT_TOKEN_LIFETIME_S, SimulatorState
from simulators.edoreczenia.server import create_app
from simulators.serving import serve_simulator


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m simulators.edoreczenia", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8093, help="port; 0 picks a free one")
    parser.add_argument(
        "--contract", type=Path, default=DEFAULT_CONTRACT, help="UA API OpenAPI document"
    )
    parser.add_argument(
        "--token-lifetime-s",
        type=float,
        default=DEFAULT_TOKEN_LIFETIME_S,
        help="expires_in of issued access tokens",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM (how the demo stops its children); return the exit code."""
    args = _parse_args(argv)
    state = SimulatorState(token_lifetime_s=args.token_lifetime_s)
    app = create_app(state, contract_path=args.contract)
    serve_simulator(app, "edoreczenia simulator", args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
