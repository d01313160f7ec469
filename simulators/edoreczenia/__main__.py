"""Run the e-Doręczenia simulator: ``python -m simulators.edoreczenia --host 127.0.0.1 --port 0``.

Once the socket is listening it prints exactly one line to stdout,
``edoreczenia simulator listening on http://HOST:PORT``, so a parent process can wait for
it (and learn the real port when started with ``--port 0``). The UA API is under
``/api/v1``, the token endpoint at ``/oauth2/token``.

With ``--keystore DIR`` (as ``hub keys init`` writes it to ``var/platforms``) every
evidence is signed with the identity ``edoreczenia``, whose certificate the hub pins in
``trust/platforms/edoreczenia.pem``; without it, with a throwaway identity (see
``GET /_sim/identity``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hub.errors import ConfigurationError
from hub.signing.keystore import Keystore
from simulators.edoreczenia.contract import DEFAULT_CONTRACT
from simulators.edoreczenia.mailboxes import DEFAULT_TOKEN_LIFETIME_S, SimulatorState
from simulators.edoreczenia.server import create_app
from simulators.edoreczenia.signing import PLATFORM_IDENTITY, EvidenceSigner
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
    parser.add_argument(
        "--keystore",
        type=Path,
        default=None,
        help=f"folder with ca.pem and the identity {PLATFORM_IDENTITY!r}, which signs evidences",
    )
    return parser.parse_args(argv)


def evidence_signer(keystore_dir: Path | None) -> EvidenceSigner:
    """The signer of evidences: the keystore's ``edoreczenia`` identity, else a throwaway one.

    Raises:
        ConfigurationError: the keystore lacks ca.pem or the edoreczenia identity.
    """
    if keystore_dir is None:
        return EvidenceSigner()
    keystore = Keystore(keystore_dir)
    return EvidenceSigner(keystore.identity(PLATFORM_IDENTITY), keystore.ca_certificate_pem())


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM (how the demo stops its children); return the exit code."""
    args = _parse_args(argv)
    try:
        signer = evidence_signer(args.keystore)
    except ConfigurationError as exc:
        print(f"edoreczenia simulator: {exc.reason}", file=sys.stderr)
        return 2
    state = SimulatorState(token_lifetime_s=args.token_lifetime_s, evidence_signer=signer)
    app = create_app(state, contract_path=args.contract)
    serve_simulator(app, "edoreczenia simulator", args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
