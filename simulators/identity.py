"""A simulated platform's signing identity: the configured one, or a throwaway made on first use.

The ePUAP and e-Doręczenia simulators sign what the real platforms sign (receipts,
evidences). Given a keystore (``--keystore``, the ``var/platforms`` that ``hub keys init``
writes) they sign with its identity; without one they make a test CA and an identity in a
temporary folder the first time they sign, so what they hand out is always signed, and
``GET /_sim/identity`` tells a client which certificate to check it against.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from hub.signing.keystore import Keystore, SigningIdentity, init_keystore


class PlatformIdentity:
    """One platform's certificate and key, made lazily when none was configured."""

    def __init__(
        self,
        name: str,
        identity: SigningIdentity | None = None,
        ca_certificate_pem: bytes | None = None,
    ) -> None:
        """Remember the configured identity (None: make a throwaway one when first needed).

        Args:
            name: the identity's name in a keystore (``epuap``, ``edoreczenia``).
            identity: the platform's certificate and key, usually ``name`` of a keystore.
            ca_certificate_pem: the CA that issued ``identity``, reported to clients.
        """
        self._name = name
        self._identity = identity
        self._ca_certificate_pem = ca_certificate_pem
        self._lock = threading.Lock()

    def identity(self) -> SigningIdentity:
        """Return the signing identity, creating the throwaway one on first call."""
        with self._lock:
            if self._identity is None:
                self._identity, self._ca_certificate_pem = _throwaway(self._name)
            return self._identity

    def ca_certificate_pem(self) -> bytes | None:
        """Return the issuing CA's certificate, when known."""
        self.identity()
        with self._lock:
            return self._ca_certificate_pem


def _throwaway(name: str) -> tuple[SigningIdentity, bytes]:
    """Create a test CA and the identity ``name`` in a temporary folder, and read them back."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-simulator-keys-") as directory:
        keystore = Keystore(Path(directory) / "keys")
        init_keystore(keystore.directory, [name], ca_dir=Path(directory) / "ca")
        return keystore.identity(name), keystore.ca_certificate_pem()
